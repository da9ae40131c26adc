package reseller

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/costlake/costlake/internal/payer"
)

func TestDestinationFieldErrors(t *testing.T) {
	role := &payer.Access{Mode: payer.AssumeRole, RoleARN: "arn:aws:iam::123456789012:role/export", ExternalID: "acme-export"}
	cases := []struct {
		d    Destination
		want []string
	}{
		{Destination{URL: "s3://b/p", Access: role, Mode: "at_cost"}, nil},
		{Destination{URL: "s3://b/p", OperatorOverride: true}, nil},
		{Destination{URL: "gs://b/p"}, nil}, // ownership is proved against the bucket
		{Destination{URL: "file:///srv/x", OperatorOverride: true}, nil},
		{Destination{URL: "s3://b/p"}, []string{"access"}},
		{Destination{URL: "file:///srv/x"}, []string{"url"}},
		{Destination{URL: "ftp://x", Mode: "cheap"}, []string{"mode", "url"}},
		{Destination{URL: "gs://b/p", Access: role}, []string{"access"}},
		{Destination{URL: "s3://b/p", Access: &payer.Access{Mode: payer.AssumeRole}}, []string{"access.role_arn"}},
		{Destination{URL: "s3://b/p", Access: &payer.Access{Mode: payer.AccessKeys, SecretRef: "env:ACME"}}, []string{"access.mode"}},
		{Destination{URL: "s3://b/p", Access: &payer.Access{Mode: payer.AccessKeys, SecretRef: "env:ACME"}, OperatorOverride: true}, nil},
		{Destination{URL: "s3://b/p", Access: &payer.Access{Mode: "root"}}, []string{"access.mode"}},
	}
	for _, c := range cases {
		got := slices.Sorted(maps.Keys(c.d.FieldErrors()))
		if !slices.Equal(got, c.want) {
			t.Errorf("%+v: fields %v, want %v", c.d, got, c.want)
		}
		if err := c.d.Validate(); (err != nil) != (len(c.want) > 0) || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("%+v: Validate() = %v", c.d, err)
		}
	}
}
