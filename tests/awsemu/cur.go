package awsemu

import "slices"

// Cost and Usage Reports: awsJson1_1, X-Amz-Target
// AWSOrigamiServiceGatewayService.<Op>, signing name "cur". Operations:
// DescribeReportDefinitions, PutReportDefinition.

// ReportDefinition is a legacy Cost and Usage Report definition; the JSON
// member names are AWS's.
type ReportDefinition struct {
	ReportName               string
	TimeUnit                 string        `json:",omitempty"` // HOURLY, DAILY, MONTHLY
	Format                   string        `json:",omitempty"` // textORcsv, Parquet
	Compression              string        `json:",omitempty"` // ZIP, GZIP, Parquet
	AdditionalSchemaElements []string      `json:",omitempty"` // e.g. RESOURCES, SPLIT_COST_ALLOCATION_DATA
	S3Bucket                 string        `json:",omitempty"`
	S3Prefix                 string        `json:",omitempty"`
	S3Region                 string        `json:",omitempty"`
	AdditionalArtifacts      []string      `json:",omitempty"` // REDSHIFT, QUICKSIGHT, ATHENA
	RefreshClosedReports     *bool         `json:",omitempty"`
	ReportVersioning         string        `json:",omitempty"` // CREATE_NEW_REPORT, OVERWRITE_REPORT
	BillingViewArn           string        `json:",omitempty"`
	ReportStatus             *ReportStatus `json:",omitempty"`
}

// ReportStatus is a report's last delivery. Its wire members are
// lowerCamelCase (lastDelivery, lastStatus), unlike the rest of the API.
type ReportStatus struct {
	LastDelivery string `json:"lastDelivery,omitempty"` // e.g. 20240101T000000Z
	LastStatus   string `json:"lastStatus,omitempty"`   // SUCCESS, ERROR_PERMISSIONS, ERROR_NO_BUCKET
}

type curState struct {
	reports []ReportDefinition
}

// AddReportDefinition adds a report definition, replacing one of the same
// ReportName.
func (s *Server) AddReportDefinition(r ReportDefinition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := s.cur.index(r.ReportName); i >= 0 {
		s.cur.reports[i] = r
		return
	}
	s.cur.reports = append(s.cur.reports, r)
}

// ReportDefinitions returns the stored report definitions, including
// those created with PutReportDefinition.
func (s *Server) ReportDefinitions() []ReportDefinition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cur.reports)
}

func (c *curState) index(name string) int {
	return slices.IndexFunc(c.reports, func(r ReportDefinition) bool { return r.ReportName == name })
}

func init() {
	register(&service{
		signingName:  "cur",
		target:       "AWSOrigamiServiceGatewayService",
		jsonVersion:  "1.1",
		accessDenied: "AccessDeniedException",
		ops: map[string]handler{
			"DescribeReportDefinitions": curDescribeReportDefinitions,
			"PutReportDefinition":       curPutReportDefinition,
		},
	})
}

func curDescribeReportDefinitions(s *Server, r *request) (any, *apiError) {
	var in struct {
		MaxResults int
		NextToken  string
	}
	if err := r.decode(&in); err != nil {
		return nil, err
	}
	reports, next, ok := page(s, r.Operation, s.cur.reports, in.NextToken, in.MaxResults)
	if !ok {
		return nil, errorf("ValidationException", "Invalid NextToken")
	}
	if reports == nil {
		reports = []ReportDefinition{}
	}
	return struct {
		ReportDefinitions []ReportDefinition
		NextToken         string `json:",omitempty"`
	}{reports, next}, nil
}

func curPutReportDefinition(s *Server, r *request) (any, *apiError) {
	var in struct{ ReportDefinition *ReportDefinition }
	if err := r.decode(&in); err != nil {
		return nil, err
	}
	if in.ReportDefinition == nil || in.ReportDefinition.ReportName == "" {
		return nil, errorf("ValidationException", "ReportDefinition.ReportName is required")
	}
	rd := *in.ReportDefinition
	if s.cur.index(rd.ReportName) >= 0 {
		return nil, errorf("DuplicateReportNameException", "Failed to put report definition %s: a report with this name already exists", rd.ReportName)
	}
	rd.ReportStatus = nil // read-only
	s.cur.reports = append(s.cur.reports, rd)
	return struct{}{}, nil
}
