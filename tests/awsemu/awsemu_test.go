package awsemu_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bcmdataexports"
	bcmtypes "github.com/aws/aws-sdk-go-v2/service/bcmdataexports/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/costandusagereportservice"
	curtypes "github.com/aws/aws-sdk-go-v2/service/costandusagereportservice/types"
	"github.com/aws/aws-sdk-go-v2/service/costexplorer"
	cetypes "github.com/aws/aws-sdk-go-v2/service/costexplorer/types"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/smithy-go"

	"github.com/costlake/costlake/tests/awsemu"
)

const management = "111111111111"

func accounts(ids ...string) []awsemu.Account {
	var out []awsemu.Account
	for _, id := range ids {
		out = append(out, awsemu.Account{Id: id, Name: "acct-" + id})
	}
	return out
}

func apiCode(t *testing.T, err error) string {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an AWS API error", err, err)
	}
	return ae.ErrorCode()
}

func TestOrganizationsListAccountsPaginates(t *testing.T) {
	emu := awsemu.Start(t)
	ids := []string{management, "222222222222", "333333333333", "444444444444", "555555555555"}
	emu.SetOrganization(management, accounts(ids...))
	ctx := context.Background()

	// Credentials other than the emulator's own, as an assumed role's would be.
	cfg := emu.Config()
	cfg.Credentials = credentials.NewStaticCredentialsProvider("ASIAASSUMEDROLE00001", "secret", "session-token")
	client := organizations.NewFromConfig(cfg)

	seen := map[string]int{}
	var order []string
	pages := 0
	for p := organizations.NewListAccountsPaginator(client, &organizations.ListAccountsInput{}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, a := range out.Accounts {
			seen[aws.ToString(a.Id)]++
			order = append(order, aws.ToString(a.Id))
			if a.State != orgtypes.AccountStateActive || a.JoinedTimestamp == nil || a.JoinedTimestamp.Year() != 2020 {
				t.Errorf("account %s: State %q JoinedTimestamp %v", aws.ToString(a.Id), a.State, a.JoinedTimestamp)
			}
			if want := "acct-" + aws.ToString(a.Id); aws.ToString(a.Name) != want {
				t.Errorf("Name %q, want %q", aws.ToString(a.Name), want)
			}
		}
	}
	if !slices.Equal(order, ids) {
		t.Errorf("accounts %v, want %v", order, ids)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("account %s listed %d times", id, n)
		}
	}
	if pages != 3 {
		t.Errorf("%d pages, want 3 (page size %d)", pages, awsemu.DefaultPageSize)
	}
	calls := emu.Calls("ListAccounts")
	if len(calls) != 3 {
		t.Fatalf("%d ListAccounts calls, want 3", len(calls))
	}
	for _, c := range calls {
		if c.AccessKeyID != "ASIAASSUMEDROLE00001" || c.Service != "organizations" || c.Region != awsemu.Region {
			t.Errorf("call %+v: want the assumed-role key, service organizations, region %s", c, awsemu.Region)
		}
	}

	// MaxResults smaller than the page size is honoured.
	out, err := client.ListAccounts(ctx, &organizations.ListAccountsInput{MaxResults: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Accounts) != 1 || out.NextToken == nil {
		t.Errorf("MaxResults 1: %d accounts, NextToken %v", len(out.Accounts), out.NextToken)
	}
	_, err = client.ListAccounts(ctx, &organizations.ListAccountsInput{NextToken: aws.String("bogus")})
	var invalid *orgtypes.InvalidInputException
	if !errors.As(err, &invalid) || invalid.Reason != orgtypes.InvalidInputExceptionReasonInvalidPaginationToken {
		t.Errorf("bad NextToken: %v, want InvalidInputException INVALID_NEXT_TOKEN", err)
	}
}

func TestOrganizationsDescribe(t *testing.T) {
	emu := awsemu.Start(t)
	emu.SetOrganization(management, []awsemu.Account{{Id: management, Email: "root@payer.example"}, {Id: "222222222222"}})
	ctx := context.Background()
	client := organizations.NewFromConfig(emu.Config())

	org, err := client.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{})
	if err != nil {
		t.Fatal(err)
	}
	o := org.Organization
	if aws.ToString(o.MasterAccountId) != management || aws.ToString(o.MasterAccountEmail) != "root@payer.example" ||
		!strings.HasPrefix(aws.ToString(o.Id), "o-") || o.FeatureSet != orgtypes.OrganizationFeatureSetAll {
		t.Errorf("organization %+v", o)
	}

	acct, err := client.DescribeAccount(ctx, &organizations.DescribeAccountInput{AccountId: aws.String("222222222222")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(acct.Account.Email) != "222222222222@example.com" || acct.Account.JoinedMethod != orgtypes.AccountJoinedMethodInvited {
		t.Errorf("account %+v", acct.Account)
	}

	_, err = client.DescribeAccount(ctx, &organizations.DescribeAccountInput{AccountId: aws.String("999999999999")})
	var notFound *orgtypes.AccountNotFoundException
	if !errors.As(err, &notFound) {
		t.Fatalf("unknown account: %v, want AccountNotFoundException", err)
	}
	if notFound.ErrorMessage() != "You specified an account that doesn't exist." {
		t.Errorf("message %q", notFound.ErrorMessage())
	}
}

func TestOrganizationsErrors(t *testing.T) {
	emu := awsemu.Start(t)
	ctx := context.Background()
	client := organizations.NewFromConfig(emu.Config())

	// No organization yet: the payer is a standalone account.
	_, err := client.ListAccounts(ctx, &organizations.ListAccountsInput{})
	var notInUse *orgtypes.AWSOrganizationsNotInUseException
	if !errors.As(err, &notInUse) {
		t.Fatalf("no organization: %v, want AWSOrganizationsNotInUseException", err)
	}

	// A member account reads its organization, not the accounts in it.
	const member = "222233334444"
	emu.SetMemberAccount(member, management)
	org, err := client.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{})
	if err != nil || aws.ToString(org.Organization.MasterAccountId) != management {
		t.Fatalf("member's DescribeOrganization: %v", err)
	}
	_, err = client.ListAccounts(ctx, &organizations.ListAccountsInput{})
	var memberDenied *orgtypes.AccessDeniedException
	if !errors.As(err, &memberDenied) || memberDenied.ErrorMessage() != "You don't have permissions to access this resource." {
		t.Fatalf("member's ListAccounts: %v, want AccessDeniedException", err)
	}

	emu.SetOrganization(management, accounts(management))
	if _, err := client.ListAccounts(ctx, &organizations.ListAccountsInput{}); err != nil {
		t.Fatalf("management's ListAccounts: %v", err)
	}
	emu.SetOrganizationsError("AccessDeniedException", "")
	_, err = client.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{})
	var denied *orgtypes.AccessDeniedException
	if !errors.As(err, &denied) {
		t.Fatalf("service error: %v, want AccessDeniedException", err)
	}
	emu.SetOrganizationsError("", "")

	emu.Deny("ListAccounts")
	_, err = client.ListAccounts(ctx, &organizations.ListAccountsInput{})
	if !errors.As(err, &denied) || !strings.Contains(denied.ErrorMessage(), "is not authorized to perform: organizations:ListAccounts") ||
		!strings.Contains(denied.ErrorMessage(), awsemu.AccessKeyID) {
		t.Fatalf("denied: %v", err)
	}
	if _, err := client.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{}); err != nil {
		t.Errorf("only ListAccounts is denied: %v", err)
	}
	emu.Allow("ListAccounts")
	if _, err := client.ListAccounts(ctx, &organizations.ListAccountsInput{}); err != nil {
		t.Errorf("after Allow: %v", err)
	}

	// TooManyRequestsException is a throttle the SDK retries.
	emu.FailNext("DescribeOrganization", "TooManyRequestsException", "AWS Organizations can't complete your request because another request is already in progress.", 2)
	before := len(emu.Calls("DescribeOrganization"))
	if _, err := client.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{}); err != nil {
		t.Fatalf("two throttles then success: %v", err)
	}
	if n := len(emu.Calls("DescribeOrganization")) - before; n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
}

func TestCloudFormationDescribeStacks(t *testing.T) {
	emu := awsemu.Start(t)
	ctx := context.Background()
	client := cloudformation.NewFromConfig(emu.Config())

	emu.PutStack(awsemu.Stack{
		StackName:   "costlake-onboarding",
		StackStatus: "CREATE_IN_PROGRESS",
		Parameters:  []awsemu.Parameter{{ParameterKey: "ExternalId", ParameterValue: "ext-123"}},
	})
	out, err := client.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String("costlake-onboarding")})
	if err != nil {
		t.Fatal(err)
	}
	st := out.Stacks[0]
	if st.StackStatus != "CREATE_IN_PROGRESS" || len(st.Outputs) != 0 || st.CreationTime == nil ||
		!strings.HasPrefix(aws.ToString(st.StackId), "arn:aws:cloudformation:us-east-1:") {
		t.Errorf("stack %+v", st)
	}
	if len(st.Parameters) != 1 || aws.ToString(st.Parameters[0].ParameterValue) != "ext-123" {
		t.Errorf("parameters %+v", st.Parameters)
	}

	emu.PutStack(awsemu.Stack{
		StackName:   "costlake-onboarding",
		StackStatus: "CREATE_COMPLETE",
		Outputs: []awsemu.Output{
			{OutputKey: "RoleArn", OutputValue: "arn:aws:iam::111111111111:role/costlake"},
			{OutputKey: "BucketName", OutputValue: "billing-bucket", Description: "where exports land"},
		},
	})
	out, err = client.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: st.StackId})
	if err != nil {
		t.Fatal(err)
	}
	got := out.Stacks[0]
	if got.StackStatus != "CREATE_COMPLETE" || aws.ToString(got.StackId) != aws.ToString(st.StackId) || !got.CreationTime.Equal(*st.CreationTime) {
		t.Errorf("updated stack %+v", got)
	}
	outputs := map[string]string{}
	for _, o := range got.Outputs {
		outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	if outputs["RoleArn"] != "arn:aws:iam::111111111111:role/costlake" || outputs["BucketName"] != "billing-bucket" {
		t.Errorf("outputs %v", outputs)
	}

	_, err = client.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String("nope")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationError" || ae.ErrorMessage() != "Stack with id nope does not exist" {
		t.Fatalf("unknown stack: %v", err)
	}
	if c := emu.Calls("DescribeStacks"); len(c) != 3 || c[0].Service != "cloudformation" || c[0].AccessKeyID != awsemu.AccessKeyID ||
		!strings.Contains(c[0].Input, "Action=DescribeStacks") {
		t.Errorf("calls %+v", c)
	}

	emu.Deny("DescribeStacks")
	_, err = client.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String("costlake-onboarding")})
	if code := apiCode(t, err); code != "AccessDenied" {
		t.Errorf("denied: code %q", code)
	}
}

func TestCloudFormationFailureReason(t *testing.T) {
	emu := awsemu.Start(t)
	ctx := context.Background()
	client := cloudformation.NewFromConfig(emu.Config())

	const name = "costlake-onboarding"
	emu.PutStack(awsemu.Stack{StackName: name, StackStatus: "CREATE_IN_PROGRESS"})
	emu.AddStackEvents(name,
		awsemu.StackEvent{LogicalResourceId: "Role", ResourceType: "AWS::IAM::Role", ResourceStatus: "CREATE_IN_PROGRESS"},
		awsemu.StackEvent{LogicalResourceId: "Role", ResourceType: "AWS::IAM::Role", ResourceStatus: "CREATE_FAILED",
			ResourceStatusReason: "Resource handler returned message: \"Role costlake already exists\""},
		awsemu.StackEvent{LogicalResourceId: "Export", ResourceType: "AWS::BCMDataExports::Export", ResourceStatus: "CREATE_FAILED",
			ResourceStatusReason: "Resource creation cancelled"},
	)
	emu.SetStackStatus(name, "ROLLBACK_IN_PROGRESS", "The following resource(s) failed to create: [Role, Export]. Rollback requested by user.")
	emu.SetStackStatus(name, "ROLLBACK_COMPLETE", "")

	var events []string
	var firstFailure string
	for p := cloudformation.NewDescribeStackEventsPaginator(client, &cloudformation.DescribeStackEventsInput{StackName: aws.String(name)}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range out.StackEvents {
			events = append(events, aws.ToString(e.LogicalResourceId)+" "+string(e.ResourceStatus))
			if strings.HasSuffix(string(e.ResourceStatus), "_FAILED") {
				firstFailure = aws.ToString(e.ResourceStatusReason) // newest first: the last one seen is the first failure
			}
			if e.Timestamp == nil || aws.ToString(e.StackName) != name || aws.ToString(e.EventId) == "" {
				t.Errorf("event %+v", e)
			}
		}
	}
	want := []string{
		name + " ROLLBACK_COMPLETE", name + " ROLLBACK_IN_PROGRESS",
		"Export CREATE_FAILED", "Role CREATE_FAILED", "Role CREATE_IN_PROGRESS", name + " CREATE_IN_PROGRESS",
	}
	if !slices.Equal(events, want) {
		t.Errorf("events newest first:\n got %q\nwant %q", events, want)
	}
	if firstFailure != "Resource handler returned message: \"Role costlake already exists\"" {
		t.Errorf("first failure %q", firstFailure)
	}
	if n := len(emu.Calls("DescribeStackEvents")); n != 3 {
		t.Errorf("%d DescribeStackEvents pages, want 3", n)
	}

	out, err := client.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if st := out.Stacks[0]; st.StackStatus != "ROLLBACK_COMPLETE" || st.LastUpdatedTime == nil {
		t.Errorf("stack %+v", st)
	}
	_, err = client.DescribeStackEvents(ctx, &cloudformation.DescribeStackEventsInput{StackName: aws.String("nope")})
	if code := apiCode(t, err); code != "ValidationError" {
		t.Errorf("unknown stack events: %q", code)
	}
}

func TestCostAndUsageReports(t *testing.T) {
	emu := awsemu.Start(t)
	ctx := context.Background()
	client := costandusagereportservice.NewFromConfig(emu.Config())

	for _, name := range []string{"a", "b", "c"} {
		emu.AddReportDefinition(awsemu.ReportDefinition{
			ReportName: name, TimeUnit: "HOURLY", Format: "textORcsv", Compression: "GZIP",
			AdditionalSchemaElements: []string{"RESOURCES"}, S3Bucket: "bucket-" + name, S3Prefix: "cur", S3Region: "us-east-1",
			ReportStatus: &awsemu.ReportStatus{LastStatus: "SUCCESS"},
		})
	}
	def := &curtypes.ReportDefinition{
		ReportName: aws.String("costlake"), TimeUnit: curtypes.TimeUnitDaily, Format: curtypes.ReportFormatParquet,
		Compression: curtypes.CompressionFormatParquet, AdditionalSchemaElements: []curtypes.SchemaElement{curtypes.SchemaElementResources},
		S3Bucket: aws.String("billing"), S3Prefix: aws.String("cur"), S3Region: curtypes.AWSRegionUsStandard,
		AdditionalArtifacts:  []curtypes.AdditionalArtifact{curtypes.AdditionalArtifactAthena},
		RefreshClosedReports: aws.Bool(true), ReportVersioning: curtypes.ReportVersioningOverwriteReport,
	}
	if _, err := client.PutReportDefinition(ctx, &costandusagereportservice.PutReportDefinitionInput{ReportDefinition: def}); err != nil {
		t.Fatal(err)
	}
	_, err := client.PutReportDefinition(ctx, &costandusagereportservice.PutReportDefinitionInput{ReportDefinition: def})
	var dup *curtypes.DuplicateReportNameException
	if !errors.As(err, &dup) {
		t.Fatalf("duplicate: %v, want DuplicateReportNameException", err)
	}

	var got []curtypes.ReportDefinition
	for p := costandusagereportservice.NewDescribeReportDefinitionsPaginator(client, &costandusagereportservice.DescribeReportDefinitionsInput{}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, out.ReportDefinitions...)
	}
	var names []string
	for _, r := range got {
		names = append(names, aws.ToString(r.ReportName))
	}
	if !slices.Equal(names, []string{"a", "b", "c", "costlake"}) {
		t.Fatalf("reports %v", names)
	}
	if r := got[0]; aws.ToString(r.S3Bucket) != "bucket-a" || r.ReportStatus == nil || r.ReportStatus.LastStatus != curtypes.LastStatusSuccess {
		t.Errorf("report a %+v", r)
	}
	if r := got[3]; r.Format != curtypes.ReportFormatParquet || r.S3Region != curtypes.AWSRegionUsStandard || !aws.ToBool(r.RefreshClosedReports) ||
		!slices.Equal(r.AdditionalArtifacts, def.AdditionalArtifacts) || r.ReportVersioning != curtypes.ReportVersioningOverwriteReport {
		t.Errorf("round-tripped report %+v", r)
	}
	if n := len(emu.Calls("DescribeReportDefinitions")); n != 2 {
		t.Errorf("%d pages, want 2", n)
	}
	if c := emu.Calls("PutReportDefinition"); len(c) != 2 || c[0].Service != "cur" {
		t.Errorf("calls %+v", c)
	}
}

func TestDataExports(t *testing.T) {
	emu := awsemu.Start(t)
	ctx := context.Background()
	client := bcmdataexports.NewFromConfig(emu.Config())

	existing := emu.AddExport(awsemu.Export{Name: "focus", DataQuery: awsemu.DataQuery{QueryStatement: "SELECT * FROM FOCUS_1_0"}})
	export := &bcmtypes.Export{
		Name: aws.String("costlake-cur2"),
		DataQuery: &bcmtypes.DataQuery{
			QueryStatement:      aws.String("SELECT identity_line_item_id FROM COST_AND_USAGE_REPORT"),
			TableConfigurations: map[string]map[string]string{"COST_AND_USAGE_REPORT": {"TIME_GRANULARITY": "HOURLY"}},
		},
		DestinationConfigurations: &bcmtypes.DestinationConfigurations{S3Destination: &bcmtypes.S3Destination{
			S3Bucket: aws.String("billing"), S3Prefix: aws.String("cur2"), S3Region: aws.String("eu-west-1"),
			S3OutputConfigurations: &bcmtypes.S3OutputConfigurations{
				Compression: bcmtypes.CompressionOptionParquet, Format: bcmtypes.FormatOptionParquet,
				OutputType: bcmtypes.S3OutputTypeCustom, Overwrite: bcmtypes.OverwriteOptionOverwriteReport,
			},
		}},
		RefreshCadence: &bcmtypes.RefreshCadence{Frequency: bcmtypes.FrequencyOptionSynchronous},
	}
	created, err := client.CreateExport(ctx, &bcmdataexports.CreateExportInput{Export: export})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(created.ExportArn)
	if !strings.HasPrefix(arn, "arn:aws:bcm-data-exports:") {
		t.Errorf("ExportArn %q", arn)
	}
	got, err := client.GetExport(ctx, &bcmdataexports.GetExportInput{ExportArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	e := got.Export
	if aws.ToString(e.ExportArn) != arn || aws.ToString(e.Name) != "costlake-cur2" ||
		aws.ToString(e.DataQuery.QueryStatement) != aws.ToString(export.DataQuery.QueryStatement) ||
		e.DataQuery.TableConfigurations["COST_AND_USAGE_REPORT"]["TIME_GRANULARITY"] != "HOURLY" ||
		aws.ToString(e.DestinationConfigurations.S3Destination.S3Region) != "eu-west-1" ||
		e.DestinationConfigurations.S3Destination.S3OutputConfigurations.Format != bcmtypes.FormatOptionParquet ||
		e.RefreshCadence.Frequency != bcmtypes.FrequencyOptionSynchronous {
		t.Errorf("export %+v", e)
	}
	if got.ExportStatus.StatusCode != bcmtypes.ExportStatusCodeHealthy || got.ExportStatus.CreatedAt == nil || got.ExportStatus.CreatedAt.IsZero() {
		t.Errorf("status %+v", got.ExportStatus)
	}

	_, err = client.CreateExport(ctx, &bcmdataexports.CreateExportInput{Export: export})
	var invalid *bcmtypes.ValidationException
	if !errors.As(err, &invalid) {
		t.Errorf("duplicate name: %v, want ValidationException", err)
	}
	_, err = client.GetExport(ctx, &bcmdataexports.GetExportInput{ExportArn: aws.String("arn:aws:bcm-data-exports:us-east-1:123456789012:export/none")})
	var notFound *bcmtypes.ResourceNotFoundException
	if !errors.As(err, &notFound) || aws.ToString(notFound.ResourceType) != "Export" {
		t.Fatalf("unknown export: %v, want ResourceNotFoundException", err)
	}

	emu.SetExportStatus(existing.ExportArn, "UNHEALTHY", "INSUFFICIENT_PERMISSION")
	emu.AddExport(awsemu.Export{Name: "third"})
	var refs []bcmtypes.ExportReference
	for p := bcmdataexports.NewListExportsPaginator(client, &bcmdataexports.ListExportsInput{}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, out.Exports...)
	}
	var names []string
	for _, r := range refs {
		names = append(names, aws.ToString(r.ExportName))
	}
	if !slices.Equal(names, []string{"focus", "costlake-cur2", "third"}) {
		t.Fatalf("exports %v", names)
	}
	if s := refs[0].ExportStatus; s.StatusCode != bcmtypes.ExportStatusCodeUnhealthy || s.StatusReason != bcmtypes.ExecutionStatusReasonInsufficientPermission {
		t.Errorf("focus status %+v", s)
	}
	if n := len(emu.Calls("ListExports")); n != 2 {
		t.Errorf("%d ListExports pages, want 2", n)
	}
}

func day(date, next, amount string) awsemu.ResultByTime {
	return awsemu.ResultByTime{
		TimePeriod: awsemu.DateInterval{Start: date, End: next},
		Total: map[string]awsemu.MetricValue{
			"UnblendedCost": {Amount: amount, Unit: "USD"},
			"UsageQuantity": {Amount: "1", Unit: "N/A"},
		},
		Groups: []awsemu.Group{{Keys: []string{"222222222222"}, Metrics: map[string]awsemu.MetricValue{"UnblendedCost": {Amount: amount, Unit: "USD"}}}},
	}
}

func TestCostExplorerPagesAndThrottles(t *testing.T) {
	emu := awsemu.Start(t)
	ctx := context.Background()
	client := costexplorer.NewFromConfig(emu.Config())
	emu.SetCostAndUsage([]awsemu.ResultByTime{
		day("2024-12-31", "2025-01-01", "9.99"),
		day("2025-01-01", "2025-01-02", "1.0000000001"),
		day("2025-01-02", "2025-01-03", "2.5"),
		day("2025-01-03", "2025-01-04", "0.0000001234"),
		day("2025-01-04", "2025-01-05", "123456789.123456789"),
	})
	in := &costexplorer.GetCostAndUsageInput{
		TimePeriod:  &cetypes.DateInterval{Start: aws.String("2025-01-01"), End: aws.String("2025-01-05")},
		Granularity: cetypes.GranularityDaily,
		Metrics:     []string{"UnblendedCost"},
		GroupBy:     []cetypes.GroupDefinition{{Type: cetypes.GroupDefinitionTypeDimension, Key: aws.String("LINKED_ACCOUNT")}},
	}
	crawl := func() ([]string, error) {
		var amounts []string
		req := *in
		for {
			out, err := client.GetCostAndUsage(ctx, &req)
			if err != nil {
				return nil, err
			}
			for _, r := range out.ResultsByTime {
				if _, ok := r.Total["UsageQuantity"]; ok {
					t.Errorf("unrequested metric UsageQuantity returned")
				}
				if len(out.GroupDefinitions) != 1 || len(r.Groups) != 1 || r.Groups[0].Keys[0] != "222222222222" {
					t.Errorf("groups %+v / definitions %+v", r.Groups, out.GroupDefinitions)
				}
				amounts = append(amounts, aws.ToString(r.TimePeriod.Start)+"="+aws.ToString(r.Total["UnblendedCost"].Amount))
			}
			if out.NextPageToken == nil {
				return amounts, nil
			}
			req.NextPageToken = out.NextPageToken
		}
	}

	amounts, err := crawl()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"2025-01-01=1.0000000001", "2025-01-02=2.5", "2025-01-03=0.0000001234", "2025-01-04=123456789.123456789"}
	if !slices.Equal(amounts, want) {
		t.Errorf("amounts %v, want %v", amounts, want)
	}
	if n := len(emu.Calls("GetCostAndUsage")); n != 2 {
		t.Errorf("%d pages, want 2", n)
	}

	// One throttle: the SDK's retryer absorbs it.
	emu.FailNext("GetCostAndUsage", "LimitExceededException", "Rate exceeded", 1)
	before := len(emu.Calls("GetCostAndUsage"))
	if amounts, err := crawl(); err != nil || len(amounts) != 4 {
		t.Fatalf("after one throttle: %v, %v", amounts, err)
	}
	if n := len(emu.Calls("GetCostAndUsage")) - before; n != 3 {
		t.Errorf("%d calls, want 3 (two pages, one retry)", n)
	}

	// More throttles than attempts: the code surfaces, typed.
	emu.FailNext("GetCostAndUsage", "LimitExceededException", "Rate exceeded", 10)
	before = len(emu.Calls("GetCostAndUsage"))
	_, err = client.GetCostAndUsage(ctx, in)
	var limit *cetypes.LimitExceededException
	if !errors.As(err, &limit) || limit.ErrorMessage() != "Rate exceeded" {
		t.Fatalf("persistent throttling: %v, want LimitExceededException", err)
	}
	if n := len(emu.Calls("GetCostAndUsage")) - before; n != 3 {
		t.Errorf("%d attempts, want the retryer's 3", n)
	}
	emu.ClearFaults("GetCostAndUsage")

	_, err = client.GetCostAndUsage(ctx, &costexplorer.GetCostAndUsageInput{
		TimePeriod: &cetypes.DateInterval{Start: aws.String("2025-01-05"), End: aws.String("2025-01-01")}, Granularity: cetypes.GranularityDaily, Metrics: []string{"UnblendedCost"},
	})
	if code := apiCode(t, err); code != "ValidationException" {
		t.Errorf("reversed period: %q", code)
	}
}

func TestUnsignedAndMisScopedRequestsRejected(t *testing.T) {
	emu := awsemu.Start(t)
	emu.SetOrganization(management, accounts(management))
	ctx := context.Background()

	// An SDK client with anonymous credentials sends no Authorization header.
	client := organizations.NewFromConfig(emu.Config(), func(o *organizations.Options) {
		o.Credentials = aws.AnonymousCredentials{}
	})
	_, err := client.ListAccounts(ctx, &organizations.ListAccountsInput{})
	if code := apiCode(t, err); code != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned: code %q", code)
	}
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusForbidden {
		t.Errorf("unsigned: want HTTP 403, got %v", err)
	}
	calls := emu.Calls("ListAccounts")
	if len(calls) != 1 || calls[0].AccessKeyID != "" {
		t.Errorf("unsigned call recorded as %+v", calls)
	}

	cfn := cloudformation.NewFromConfig(emu.Config(), func(o *cloudformation.Options) { o.Credentials = aws.AnonymousCredentials{} })
	_, err = cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{})
	if code := apiCode(t, err); code != "MissingAuthenticationToken" {
		t.Errorf("unsigned CloudFormation: code %q", code)
	}

	// Signed for the wrong service.
	req, _ := http.NewRequest(http.MethodPost, emu.URL, strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "AWSInsightsIndexService.GetCostAndUsage")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"__type":"InvalidSignatureException"`) || !strings.Contains(string(body), "'ce'") {
		t.Errorf("mis-scoped: %d %s", resp.StatusCode, body)
	}
}

func TestEndpointEnvVars(t *testing.T) {
	emu := awsemu.Start(t)
	emu.SetOrganization(management, accounts(management))
	emu.Setenv(t)
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT1")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "eu-central-1")
	ctx := context.Background()

	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := organizations.NewFromConfig(cfg).DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{}); err != nil {
		t.Fatal(err)
	}
	c := emu.Calls("DescribeOrganization")
	if len(c) != 1 || c[0].AccessKeyID != "AKIAFROMENVIRONMENT1" || c[0].Region != "eu-central-1" {
		t.Errorf("calls %+v", c)
	}
	if len(emu.Env()) != len(awsemu.EndpointEnvVars) {
		t.Errorf("Env %v", emu.Env())
	}
}
