package pricing

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const acctA = "111111111111"
const acctB = "222222222222"

// validBook is a pricebook using every part.
func validBook() Pricebook {
	return Pricebook{
		CustomerID:    "acme",
		EffectiveFrom: "2025-01",
		GlobalPercent: "5",
		Rules: []Rule{
			{Service: "AmazonEC2", Percent: "-10", Description: "EC2 discount"},
			{Account: acctA, Service: "AmazonS3", Percent: "3.5"},
			{UsageType: "USE1-DataTransfer*", Percent: "0"},
		},
		Support: &SupportPlan{
			Name: "Business",
			Tiers: []SupportTier{
				{From: "0", Percent: "10"}, {From: "10000", Percent: "7"},
				{From: "80000", Percent: "5"}, {From: "250000", Percent: "3"},
			},
			MinimumFee: "100",
		},
		Credits: []Credit{
			{Description: "welcome", Amount: "250", Period: "2025-02"},
			{Description: "migration", Amount: "50", Recurring: true, Until: "2025-12"},
		},
	}
}

func TestValidateAcceptsValid(t *testing.T) {
	for name, p := range map[string]Pricebook{
		"full":               validBook(),
		"minimal":            {EffectiveFrom: "2024-12"},
		"bounds":             {EffectiveFrom: "2024-12", GlobalPercent: "-100", Rules: []Rule{{Service: "X", Percent: "1000"}, {Service: "Y", Percent: "0.000001"}}},
		"flat support fee":   {EffectiveFrom: "2024-12", Support: &SupportPlan{MinimumFee: "250"}},
		"tiers without min":  {EffectiveFrom: "2024-12", Support: &SupportPlan{Tiers: []SupportTier{{From: "0", Percent: "3"}}}},
		"recurring no until": {EffectiveFrom: "2024-12", Credits: []Credit{{Description: "d", Amount: "1", Recurring: true}}},
		"recurring earlier start is harmless": {EffectiveFrom: "2024-12",
			Credits: []Credit{{Description: "d", Amount: "1", Recurring: true, Period: "2024-01", Until: "2024-12"}}},
		"same usage type exact and prefix": {EffectiveFrom: "2024-12", Rules: []Rule{{UsageType: "A", Percent: "1"}, {UsageType: "A*", Percent: "2"}}},
	} {
		if err := p.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v, want nil", name, err)
		}
	}
}

func TestValidateProblems(t *testing.T) {
	cases := []struct {
		name string
		edit func(p *Pricebook)
		want []string // every problem, in order
	}{
		// The one-off credit's period can no longer be compared with
		// effective_from; it is reported only once.
		{"missing period", func(p *Pricebook) { p.EffectiveFrom = "" },
			[]string{"effective_from: required: a billing period YYYY-MM"}},
		{"bad periods", func(p *Pricebook) {
			p.EffectiveFrom = "2025-13"
			p.Credits[0].Period = "2025-2"
			p.Credits[1].Until = "1999-12"
		}, []string{
			`effective_from: must be a billing period YYYY-MM, got "2025-13"`,
			`credits[0].period: must be a billing period YYYY-MM, got "2025-2"`,
			`credits[1].until: must be a billing period YYYY-MM, got "1999-12"`,
		}},
		{"negative version", func(p *Pricebook) { p.Version = -1 }, []string{"version: must be ≥ 0 (the store sets it)"}},
		{"percents", func(p *Pricebook) {
			p.GlobalPercent = "abc"
			p.Rules[0].Percent = "-100.5"
			p.Rules[1].Percent = "1000.000001"
			p.Rules[2].Percent = "1.0000001"
		}, []string{
			`global_percent: must be a decimal between -100 and 1000, got "abc"`,
			"rules[0].percent: must be a decimal between -100 and 1000",
			"rules[1].percent: must be a decimal between -100 and 1000",
			`rules[2].percent: at most 6 decimal places, got "1.0000001"`,
		}},
		{"missing rule percent", func(p *Pricebook) { p.Rules[2].Percent = "" },
			[]string{"rules[2].percent: required: a decimal between -100 and 1000"}},
		{"far too precise percent", func(p *Pricebook) { p.Rules[2].Percent = "0.0000000000000000001" },
			[]string{`rules[2].percent: at most 6 decimal places, got "0.0000000000000000001"`}},
		{"rule naming nothing", func(p *Pricebook) { p.Rules = append(p.Rules, Rule{Percent: "3"}) },
			[]string{"rules[3]: names none of account, service, usage_type, operation, region, line_item_type, billing_entity (global_percent adjusts everything)"}},
		{"rule fields", func(p *Pricebook) {
			p.Rules[0].Account = "12345"
			p.Rules[0].Service = "Amazon EC2"
			p.Rules[1].Service = "Amazon*"
			p.Rules[2].UsageType = "*"
			p.Rules = append(p.Rules, Rule{UsageType: "USE1-*-Bytes", Percent: "1"}, Rule{UsageType: "Box Usage", Percent: "1"})
		}, []string{
			`rules[0].account: must be a 12-digit AWS account ID, got "12345"`,
			`rules[0].service: must not contain spaces, got "Amazon EC2"`,
			"rules[1].service: no wildcards: a product code or service code, exactly (e.g. AmazonEC2)",
			`rules[2].usage_type: "*" alone matches everything: leave usage_type out`,
			`rules[3].usage_type: "*" may only end a usage type, as a prefix match, got "USE1-*-Bytes"`,
			`rules[4].usage_type: must not contain spaces, got "Box Usage"`,
		}},
		{"duplicate rules", func(p *Pricebook) {
			p.Rules = append(p.Rules,
				Rule{Service: "AmazonEC2", Percent: "-12"},
				Rule{Account: acctA, Service: "AmazonS3", Percent: "3.5"},
				Rule{UsageType: "USE1-DataTransfer*", Percent: "1"})
		}, []string{
			"rules[3]: duplicates rules[0] (it names the same values): which one applies would be ambiguous",
			"rules[4]: duplicates rules[1] (it names the same values): which one applies would be ambiguous",
			"rules[5]: duplicates rules[2] (it names the same values): which one applies would be ambiguous",
		}},
		{"tiers not ascending", func(p *Pricebook) {
			p.Support.Tiers[2].From = "10000"
			p.Support.Tiers[3].From = "5000"
		}, []string{
			"support.tiers[2].from: must be above support.tiers[1].from (10000): tiers ascend",
			"support.tiers[3].from: must be above support.tiers[2].from (10000): tiers ascend",
		}},
		{"first tier", func(p *Pricebook) { p.Support.Tiers[0].From = "1" },
			[]string{`support.tiers[0].from: the first tier must start at 0, got "1"`}},
		{"tier values", func(p *Pricebook) {
			p.Support.Tiers[1].From = "-1"
			p.Support.Tiers[1].Percent = "101"
			p.Support.Tiers[2].Percent = "-1"
			p.Support.Tiers[3].Percent = ""
		}, []string{
			`support.tiers[1].from: must be a decimal ≥ 0, got "-1"`,
			"support.tiers[1].percent: must be a decimal between 0 and 100",
			"support.tiers[2].percent: must be a decimal between 0 and 100",
			"support.tiers[3].percent: required: a decimal between 0 and 100",
		}},
		{"negative minimum", func(p *Pricebook) { p.Support.MinimumFee = "-100" },
			[]string{`support.minimum_fee: must be a decimal ≥ 0, got "-100"`}},
		{"empty support", func(p *Pricebook) { p.Support = &SupportPlan{Name: "x"} },
			[]string{"support: needs tiers or a minimum_fee (omit support for no support fee)"}},
		{"credits", func(p *Pricebook) {
			p.Credits = []Credit{
				{Description: " ", Amount: "0", Period: "2025-03"},
				{Description: "d", Amount: "-5", Period: "2024-12"},
				{Description: "d", Amount: "x"},
				{Description: "d", Amount: "1", Period: "2025-03", Until: "2025-04"},
				{Description: "d", Amount: "1", Recurring: true, Period: "2025-06", Until: "2025-05"},
				{Description: "d", Amount: "1", Recurring: true, Until: "2024-12"},
			}
		}, []string{
			"credits[0].description: required: what the credit is for, shown on the invoice",
			`credits[0].amount: must be a decimal > 0, got "0"`,
			`credits[1].amount: must be a decimal > 0, got "-5"`,
			"credits[1].period: 2024-12 is before effective_from 2025-01: the credit would never apply",
			`credits[2].amount: must be a decimal > 0, got "x" (not a decimal number: "x")`,
			"credits[2].period: required: a billing period YYYY-MM",
			"credits[3].until: only a recurring credit has an end",
			"credits[4].until: 2025-05 is before the credit's first period 2025-06",
			"credits[5].until: 2024-12 is before the credit's first period 2025-01",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := validBook()
			c.edit(&p)
			err := p.Validate()
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want a *ValidationError", err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false")
			}
			var got []string
			for _, pr := range ve.Problems {
				got = append(got, pr.String())
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestValidationErrorMessage(t *testing.T) {
	p := validBook()
	p.Rules[2].Percent = "2000"
	p.Support.MinimumFee = "-1"
	err := p.Validate()
	want := `invalid pricebook: 2 problems: rules[2].percent: must be a decimal between -100 and 1000; support.minimum_fee: must be a decimal ≥ 0, got "-1"`
	if err == nil || err.Error() != want {
		t.Errorf("Error() = %v\nwant %s", err, want)
	}
}

func TestDecode(t *testing.T) {
	p := validBook()
	body, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"effective_from":"2025-01"`, `"global_percent":"5"`, `"usage_type":"USE1-DataTransfer*"`,
		`"minimum_fee":"100"`, `"recurring":true`, `"tiers":[{"from":"0","percent":"10"}`} {
		if !strings.Contains(string(body), field) {
			t.Errorf("JSON %s lacks %s", body, field)
		}
	}
	got, err := Decode(body)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, p)
	}

	for name, bad := range map[string]string{
		"unknown field": `{"effective_from":"2025-01","markup_taxes":true}`,
		"number":        `{"effective_from":"2025-01","global_percent":5}`,
		"trailing":      `{"effective_from":"2025-01"} {}`,
		"invalid":       `{"effective_from":"2025-01","global_percent":"-101"}`,
	} {
		if _, err := Decode([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Decode = %v, want ErrInvalid", name, err)
		}
	}
	var ve *ValidationError
	if _, err := Decode([]byte(`{"effective_from":"2025-01","global_percent":"-101"}`)); !errors.As(err, &ve) || ve.Problems[0].Field != "global_percent" {
		t.Errorf("Decode of an invalid pricebook = %v, want a *ValidationError on global_percent", err)
	}
}
