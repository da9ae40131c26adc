package cloudformation

import "testing"

// Fake values of pseudo parameters in scenarios.
const (
	testAccount = paperAccount
	testStack   = paperStack
)

func loadTemplate(t testing.TB) *tmpl {
	t.Helper()
	tp, err := parseTemplate()
	if err != nil {
		t.Fatal(err)
	}
	return tp
}
