package awsemu

import (
	"fmt"
	"slices"
	"time"
)

// BCM Data Exports: awsJson1_1, X-Amz-Target
// AWSBillingAndCostManagementDataExports.<Op>, signing name
// "bcm-data-exports". Operations: ListExports, GetExport, CreateExport.

// Export is a Data Exports export (e.g. CUR 2.0 or FOCUS); the JSON member
// names are AWS's.
type Export struct {
	ExportArn                 string `json:",omitempty"` // set by the emulator if empty
	Name                      string
	Description               string `json:",omitempty"`
	DataQuery                 DataQuery
	DestinationConfigurations DestinationConfigurations
	RefreshCadence            RefreshCadence
}

// DataQuery is an export's SQL query and table settings.
type DataQuery struct {
	QueryStatement      string                       // e.g. SELECT ... FROM COST_AND_USAGE_REPORT
	TableConfigurations map[string]map[string]string `json:",omitempty"` // e.g. COST_AND_USAGE_REPORT: {TIME_GRANULARITY: HOURLY}
}

// DestinationConfigurations says where an export is delivered.
type DestinationConfigurations struct {
	S3Destination S3Destination
}

// S3Destination is an export's bucket and file layout.
type S3Destination struct {
	S3Bucket               string
	S3Prefix               string
	S3Region               string
	S3BucketOwner          string `json:",omitempty"`
	S3OutputConfigurations S3OutputConfigurations
}

// S3OutputConfigurations is an export's file format.
type S3OutputConfigurations struct {
	Compression string // GZIP, PARQUET
	Format      string // TEXT_OR_CSV, PARQUET
	OutputType  string // CUSTOM
	Overwrite   string // CREATE_NEW_REPORT, OVERWRITE_REPORT
}

// RefreshCadence is how often an export refreshes.
type RefreshCadence struct {
	Frequency string // SYNCHRONOUS
}

// ExportStatus is an export's health.
type ExportStatus struct {
	StatusCode      string // HEALTHY, UNHEALTHY
	StatusReason    string // INSUFFICIENT_PERMISSION, BILL_OWNER_CHANGED, INTERNAL_FAILURE
	CreatedAt       time.Time
	LastUpdatedAt   time.Time
	LastRefreshedAt time.Time
}

type bcmExport struct {
	Export
	status ExportStatus
}

type bcmState struct {
	exports []*bcmExport
}

func (b *bcmState) find(arn string) *bcmExport {
	for _, e := range b.exports {
		if e.ExportArn == arn {
			return e
		}
	}
	return nil
}

// AddExport stores an export, HEALTHY, and returns it with its ExportArn.
// An export with the same ExportArn is replaced.
func (s *Server) AddExport(e Export) Export {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addExport(e)
}

func (s *Server) addExport(e Export) Export {
	if e.ExportArn == "" {
		e.ExportArn = fmt.Sprintf("arn:aws:bcm-data-exports:%s:%s:export/%s-%s", Region, AccountID, e.Name, newUUID())
	}
	now := time.Now().UTC()
	be := &bcmExport{Export: e, status: ExportStatus{StatusCode: "HEALTHY", CreatedAt: now, LastUpdatedAt: now}}
	if old := s.bcm.find(e.ExportArn); old != nil {
		*old = *be
		return e
	}
	s.bcm.exports = append(s.bcm.exports, be)
	return e
}

// SetExportStatus sets an export's status, e.g. UNHEALTHY with
// INSUFFICIENT_PERMISSION. It fails the test for an unknown export.
func (s *Server) SetExportStatus(exportArn, statusCode, statusReason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.bcm.find(exportArn)
	if e == nil {
		s.tb.Errorf("awsemu: SetExportStatus: no export %q", exportArn)
		return
	}
	e.status.StatusCode, e.status.StatusReason = statusCode, statusReason
	e.status.LastUpdatedAt = time.Now().UTC()
}

// Exports returns the stored exports, including those created with
// CreateExport, oldest first.
func (s *Server) Exports() []Export {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Export, 0, len(s.bcm.exports))
	for _, e := range s.bcm.exports {
		out = append(out, e.Export)
	}
	return out
}

type wireExportStatus struct {
	StatusCode      string
	StatusReason    string `json:",omitempty"`
	CreatedAt       string `json:",omitempty"`
	LastUpdatedAt   string `json:",omitempty"`
	LastRefreshedAt string `json:",omitempty"`
}

// toWire writes timestamps as date-time strings, the format the Data
// Exports model gives ExportStatus's members.
func (st ExportStatus) toWire() wireExportStatus {
	w := wireExportStatus{StatusCode: st.StatusCode, StatusReason: st.StatusReason}
	for _, p := range []struct {
		t   time.Time
		out *string
	}{{st.CreatedAt, &w.CreatedAt}, {st.LastUpdatedAt, &w.LastUpdatedAt}, {st.LastRefreshedAt, &w.LastRefreshedAt}} {
		if !p.t.IsZero() {
			*p.out = isoTime(p.t)
		}
	}
	return w
}

func init() {
	register(&service{
		signingName:  "bcm-data-exports",
		target:       "AWSBillingAndCostManagementDataExports",
		jsonVersion:  "1.1",
		accessDenied: "AccessDeniedException",
		ops: map[string]handler{
			"ListExports":  bcmListExports,
			"GetExport":    bcmGetExport,
			"CreateExport": bcmCreateExport,
		},
	})
}

func bcmValidation(message string) *apiError {
	return &apiError{Code: "ValidationException", Message: message, Fields: map[string]any{"Reason": "fieldValidationFailed"}}
}

func bcmListExports(s *Server, r *request) (any, *apiError) {
	var in struct {
		MaxResults int
		NextToken  string
	}
	if err := r.decode(&in); err != nil {
		return nil, err
	}
	exports, next, ok := page(s, r.Operation, s.bcm.exports, in.NextToken, in.MaxResults)
	if !ok {
		return nil, bcmValidation("Invalid NextToken")
	}
	type ref struct {
		ExportArn    string
		ExportName   string
		ExportStatus wireExportStatus
	}
	out := struct {
		Exports   []ref
		NextToken string `json:",omitempty"`
	}{Exports: []ref{}, NextToken: next}
	for _, e := range exports {
		out.Exports = append(out.Exports, ref{e.ExportArn, e.Name, e.status.toWire()})
	}
	return out, nil
}

func bcmGetExport(s *Server, r *request) (any, *apiError) {
	var in struct{ ExportArn string }
	if err := r.decode(&in); err != nil {
		return nil, err
	}
	e := s.bcm.find(in.ExportArn)
	if e == nil {
		return nil, &apiError{
			Code:    "ResourceNotFoundException",
			Message: fmt.Sprintf("Export %s not found", in.ExportArn),
			Fields:  map[string]any{"ResourceId": in.ExportArn, "ResourceType": "Export"},
		}
	}
	return struct {
		Export       Export
		ExportStatus wireExportStatus
	}{e.Export, e.status.toWire()}, nil
}

func bcmCreateExport(s *Server, r *request) (any, *apiError) {
	var in struct{ Export *Export }
	if err := r.decode(&in); err != nil {
		return nil, err
	}
	e := in.Export
	switch {
	case e == nil:
		return nil, bcmValidation("Export is required")
	case e.Name == "":
		return nil, bcmValidation("Export.Name is required")
	case e.DataQuery.QueryStatement == "":
		return nil, bcmValidation("Export.DataQuery.QueryStatement is required")
	case e.DestinationConfigurations.S3Destination.S3Bucket == "":
		return nil, bcmValidation("Export.DestinationConfigurations.S3Destination.S3Bucket is required")
	}
	if slices.ContainsFunc(s.bcm.exports, func(x *bcmExport) bool { return x.Name == e.Name }) {
		return nil, bcmValidation(fmt.Sprintf("An export named %s already exists", e.Name))
	}
	e.ExportArn = ""
	stored := s.addExport(*e)
	return struct{ ExportArn string }{stored.ExportArn}, nil
}
