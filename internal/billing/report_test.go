package billing

import "testing"

// Both tables end with costlake_report; a source column of that name is
// kept in other_columns, never taken for costlake's own.
func TestReportColumn(t *testing.T) {
	for _, s := range Schemas {
		if last := s.Columns[len(s.Columns)-1]; last.Name != ColReport || last.Kind != String || s.Report != ColReport {
			t.Errorf("%s ends with %s", s.Table, last.Name)
		}
	}
	if Index(ColReport) >= 0 || len(LineItems.Columns) != len(Columns)+1 {
		t.Error("Columns, the CUR 2.0 list, must not hold costlake_report")
	}
	m, err := MapFOCUSHeader([]string{"BilledCost", ColReport})
	if err != nil {
		t.Fatal(err)
	}
	if tg := m.Targets[1]; tg.Column != FOCUS.MustIndex(ColOtherColumns) || tg.Key != ColReport {
		t.Errorf("FOCUS %s maps to %+v", ColReport, tg)
	}
	if tg := athenaTarget(ColReport, ColReport); tg.Column != MustIndex(ColOtherColumns) {
		t.Errorf("Athena %s maps to %+v", ColReport, tg)
	}
}
