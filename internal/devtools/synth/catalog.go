package synth

import "strings"

// The catalog: regions and the AWS services (one usage type each) the
// generator bills. Rates are us-east-1 public on-demand list prices;
// other regions scale them by region.factor percent.

type region struct {
	code, name string
	prefix     string // usage type prefix; us-east-1 has none for most usage types
	abbrev     string // "USE1", used where even us-east-1 usage types carry one
	factor     int64  // price factor, percent of us-east-1
	weight     int
}

var regions = []region{
	{"us-east-1", "US East (N. Virginia)", "", "USE1", 100, 50},
	{"us-west-2", "US West (Oregon)", "USW2-", "USW2", 100, 20},
	{"eu-west-1", "EU (Ireland)", "EU-", "EU", 110, 14},
	{"eu-central-1", "EU (Frankfurt)", "EUC1-", "EUC1", 115, 10},
	{"ap-northeast-1", "Asia Pacific (Tokyo)", "APN1-", "APN1", 125, 6},
}

// amountKind is how a usage line's lineItem/UsageAmount is drawn.
type amountKind uint8

const (
	amtHours   amountKind = iota // one resource-hour: 1.0, sometimes a partial hour
	amtMonthly                   // lo..hi units held all month, accrued for one hour (GB-Mo, metrics)
	amtLog                       // log-uniform 10⁻¹⁰ … ~1000, so tiny values (5.0E-5) are common
	amtCount                     // lo..hi whole multiples of step
)

// resKind is the shape of lineItem/ResourceId.
type resKind uint8

const (
	resNone resKind = iota
	resInstance
	resVolume
	resSnapshot
	resBucket
	resFunction
	resTask
	resDB
	resLogGroup
	resNAT
	resLB
	resTable
	resKey
)

type service struct {
	short            string // prefix of user:Name tags
	code, name       string // lineItem/ProductCode, product/ProductName
	svcCode, svcName string // product/servicecode, product/servicename
	usageType        string // without region prefix
	forcePrefix      bool   // us-east-1 usage type carries "USE1-" too
	operation        string
	family           string // product/productFamily
	unit             string // pricing/unit
	rate             string // us-east-1 on-demand rate in USD per unit
	desc             string // lineItem/LineItemDescription; {rate} and {loc} are filled in
	attrs            []string
	noLocation       bool // data transfer names from/to locations instead
	amount           amountKind
	lo, hi, step     int64
	res              resKind
	az               bool
	nf               string // lineItem/NormalizationFactor of instance usage
	ri               bool   // reserved instances apply (DiscountedUsage, RIFee)
	sp               bool   // Compute Savings Plans apply
	instFamily       string // "m5": EC2 Instance Savings Plans of that family apply
	instType         string // for RI fee descriptions
	riOS             string // "Linux/UNIX (Amazon VPC)" or the database engine
	weight           int
}

const (
	ec2Name = "Amazon Elastic Compute Cloud"
	rdsName = "Amazon Relational Database Service"
)

func ec2(short, typ, rate, vcpu, mem, fam, nf, proc, clock, net string, weight int) service {
	graviton := strings.Contains(proc, "Graviton")
	intel, features := "Yes", "Intel AVX; Intel AVX2; Intel AVX512; Intel Turbo"
	if graviton {
		intel, features = "No", ""
	}
	ecu := "Variable"
	if !strings.HasPrefix(typ, "t3.") {
		ecu = "NA"
	}
	return service{
		short: short, code: "AmazonEC2", name: ec2Name, svcCode: "AmazonEC2", svcName: ec2Name,
		usageType: "BoxUsage:" + typ, operation: "RunInstances", family: "Compute Instance",
		unit: "Hrs", rate: rate, desc: "${rate} per On Demand Linux " + typ + " Instance Hour",
		attrs: []string{
			"capacitystatus", "Used", "clockSpeed", clock, "currentGeneration", "Yes",
			"dedicatedEbsThroughput", "Up to 4750 Mbps", "ecu", ecu,
			"enhancedNetworkingSupported", "Yes", "instanceFamily", fam, "instanceType", typ,
			"instanceTypeFamily", strings.SplitN(typ, ".", 2)[0],
			"intelAvx2Available", intel, "intelAvxAvailable", intel, "intelTurboAvailable", intel,
			"licenseModel", "No License required", "marketoption", "OnDemand", "memory", mem,
			"networkPerformance", net, "normalizationSizeFactor", nf, "operatingSystem", "Linux",
			"physicalProcessor", proc, "preInstalledSw", "NA", "processorArchitecture", "64-bit",
			"processorFeatures", features, "storage", "EBS only", "tenancy", "Shared", "vcpu", vcpu,
		},
		amount: amtHours, res: resInstance, az: true, nf: nf, ri: true, sp: true,
		instFamily: strings.SplitN(typ, ".", 2)[0], instType: typ, riOS: "Linux/UNIX (Amazon VPC)",
		weight: weight,
	}
}

func rds(typ, engine, op, rate, vcpu, mem, fam, nf string, weight int) service {
	return service{
		short: "db", code: "AmazonRDS", name: rdsName, svcCode: "AmazonRDS", svcName: rdsName,
		usageType: "InstanceUsage:" + typ, operation: op, family: "Database Instance", unit: "Hrs",
		rate: rate, desc: "${rate} per RDS " + typ + " instance hour (or partial hour) running " + engine,
		attrs: []string{
			"currentGeneration", "Yes", "databaseEngine", engine, "deploymentOption", "Single-AZ",
			"instanceFamily", fam, "instanceType", typ, "licenseModel", "No license required",
			"memory", mem, "networkPerformance", "Up to 10 Gigabit", "normalizationSizeFactor", nf,
			"physicalProcessor", "Intel Xeon Platinum 8259CL", "processorArchitecture", "64-bit",
			"storage", "EBS Only", "vcpu", vcpu,
		},
		amount: amtHours, res: resDB, az: true, nf: nf, ri: true, instType: typ, riOS: engine,
		weight: weight,
	}
}

var services = []service{
	ec2("bastion", "t3.micro", "0.0104", "2", "1 GiB", "General purpose", "0.5", "Intel Skylake E5 2686 v5", "3.1 GHz", "Up to 5 Gigabit", 3),
	ec2("web", "t3.medium", "0.0416", "2", "4 GiB", "General purpose", "2", "Intel Skylake E5 2686 v5", "3.1 GHz", "Up to 5 Gigabit", 8),
	ec2("app", "m5.large", "0.096", "2", "8 GiB", "General purpose", "4", "Intel Xeon Platinum 8175", "3.1 GHz", "Up to 10 Gigabit", 10),
	ec2("app", "m5.xlarge", "0.192", "4", "16 GiB", "General purpose", "8", "Intel Xeon Platinum 8175", "3.1 GHz", "Up to 10 Gigabit", 6),
	ec2("worker", "c5.2xlarge", "0.34", "8", "16 GiB", "Compute optimized", "16", "Intel Xeon Platinum 8124M", "3.4 GHz", "Up to 10 Gigabit", 4),
	ec2("cache", "r5.large", "0.126", "2", "16 GiB", "Memory optimized", "4", "Intel Xeon Platinum 8175", "3.1 GHz", "Up to 10 Gigabit", 3),
	ec2("api", "m6g.large", "0.077", "2", "8 GiB", "General purpose", "4", "AWS Graviton2 Processor", "2.5 GHz", "Up to 10 Gigabit", 4),
	ec2("batch", "c6i.4xlarge", "0.68", "16", "32 GiB", "Compute optimized", "32", "Intel Xeon 8375C (Ice Lake)", "3.5 GHz", "Up to 12500 Megabit", 2),
	{
		short: "data", code: "AmazonEC2", name: ec2Name, svcCode: "AmazonEC2", svcName: ec2Name,
		usageType: "EBS:VolumeUsage.gp3", operation: "CreateVolume-Gp3", family: "Storage", unit: "GB-Mo",
		rate: "0.08", desc: "${rate} per GB-month of General Purpose (gp3) provisioned storage - {loc}",
		attrs: []string{"maxIopsvolume", "16000", "maxThroughputvolume", "1000 MiB/s", "maxVolumeSize", "16 TiB",
			"storageMedia", "SSD-backed", "volumeApiName", "gp3", "volumeType", "General Purpose"},
		amount: amtMonthly, lo: 8, hi: 2000, res: resVolume, az: true, weight: 8,
	},
	{
		short: "data", code: "AmazonEC2", name: ec2Name, svcCode: "AmazonEC2", svcName: ec2Name,
		usageType: "EBS:VolumeUsage.gp2", operation: "CreateVolume-Gp2", family: "Storage", unit: "GB-Mo",
		rate: "0.10", desc: "${rate} per GB-month of General Purpose SSD (gp2) provisioned storage - {loc}",
		attrs: []string{"maxIopsvolume", "16000", "maxThroughputvolume", "250 MiB/s", "maxVolumeSize", "16 TiB",
			"storageMedia", "SSD-backed", "volumeApiName", "gp2", "volumeType", "General Purpose"},
		amount: amtMonthly, lo: 8, hi: 1000, res: resVolume, az: true, weight: 4,
	},
	{
		short: "backup", code: "AmazonEC2", name: ec2Name, svcCode: "AmazonEC2", svcName: ec2Name,
		usageType: "EBS:SnapshotUsage", operation: "CreateSnapshot", family: "Storage Snapshot", unit: "GB-Mo",
		rate: "0.05", desc: "${rate} per GB-Month of snapshot data stored - {loc}",
		attrs:  []string{"storageMedia", "Amazon S3"},
		amount: amtMonthly, lo: 10, hi: 5000, res: resSnapshot, weight: 3,
	},
	{
		short: "app", code: "AmazonEC2", name: ec2Name, svcCode: "AWSDataTransfer", svcName: "AWS Data Transfer",
		usageType: "DataTransfer-Out-Bytes", operation: "RunInstances", family: "Data Transfer", unit: "GB",
		rate: "0.09", desc: "${rate} per GB - first 10 TB / month data transfer out beyond the global free tier",
		attrs: []string{"fromLocation", "{loc}", "fromLocationType", "AWS Region", "fromRegionCode", "{region}",
			"toLocation", "External", "toLocationType", "Other", "transferType", "AWS Outbound"},
		noLocation: true, amount: amtLog, hi: 9, res: resInstance, weight: 8,
	},
	{
		short: "app", code: "AmazonEC2", name: ec2Name, svcCode: "AWSDataTransfer", svcName: "AWS Data Transfer",
		usageType: "DataTransfer-Regional-Bytes", forcePrefix: true, operation: "PublicIP-In", family: "Data Transfer", unit: "GB",
		rate: "0.01", desc: "${rate} per GB - regional data transfer - in/out/between EC2 AZs or using elastic IPs or ELB",
		attrs: []string{"fromLocation", "{loc}", "fromLocationType", "AWS Region", "fromRegionCode", "{region}",
			"toLocation", "{loc}", "toLocationType", "AWS Region", "toRegionCode", "{region}", "transferType", "IntraRegion"},
		noLocation: true, amount: amtLog, hi: 9, res: resInstance, weight: 6,
	},
	{
		short: "logs", code: "AmazonS3", name: "Amazon Simple Storage Service", svcCode: "AmazonS3", svcName: "Amazon Simple Storage Service",
		usageType: "TimedStorage-ByteHrs", operation: "StandardStorage", family: "Storage", unit: "GB-Mo",
		rate: "0.023", desc: "${rate} per GB - first 50 TB / month of storage used",
		attrs: []string{"availability", "99.99%", "durability", "99.999999999%", "storageClass", "General Purpose",
			"volumeType", "Standard"},
		amount: amtMonthly, lo: 1, hi: 50000, res: resBucket, weight: 7,
	},
	{
		short: "logs", code: "AmazonS3", name: "Amazon Simple Storage Service", svcCode: "AmazonS3", svcName: "Amazon Simple Storage Service",
		usageType: "Requests-Tier1", operation: "PutObject", family: "API Request", unit: "Requests",
		rate: "0.000005", desc: "$0.005 per 1,000 PUT, COPY, POST, or LIST requests",
		attrs:  []string{"group", "S3-API-Tier1", "groupDescription", "PUT/COPY/POST or LIST requests"},
		amount: amtCount, lo: 1, hi: 20000, step: one, res: resBucket, weight: 4,
	},
	{
		short: "logs", code: "AmazonS3", name: "Amazon Simple Storage Service", svcCode: "AmazonS3", svcName: "Amazon Simple Storage Service",
		usageType: "Requests-Tier2", operation: "GetObject", family: "API Request", unit: "Requests",
		rate: "0.0000004", desc: "$0.0004 per 1,000 GET and all other requests",
		attrs:  []string{"group", "S3-API-Tier2", "groupDescription", "GET and all other requests"},
		amount: amtCount, lo: 1, hi: 200000, step: one, res: resBucket, weight: 4,
	},
	{
		short: "fn", code: "AWSLambda", name: "AWS Lambda", svcCode: "AWSLambda", svcName: "AWS Lambda",
		usageType: "Lambda-GB-Second", operation: "Invoke", family: "Serverless", unit: "Lambda-GB-Second",
		rate: "0.0000166667", desc: "AWS Lambda - Total Compute - {loc}",
		attrs:  []string{"group", "AWS-Lambda-Duration", "groupDescription", "Invocation duration in GB-seconds"},
		amount: amtCount, lo: 1, hi: 360000, step: one / 10, res: resFunction, sp: true, weight: 5,
	},
	{
		short: "fn", code: "AWSLambda", name: "AWS Lambda", svcCode: "AWSLambda", svcName: "AWS Lambda",
		usageType: "Request", operation: "Invoke", family: "Serverless", unit: "Requests",
		rate: "0.0000002", desc: "AWS Lambda - Total Requests - {loc}",
		attrs:  []string{"group", "AWS-Lambda-Requests", "groupDescription", "Invocation call for a Lambda function"},
		amount: amtCount, lo: 1, hi: 100000, step: one, res: resFunction, sp: true, weight: 4,
	},
	{
		short: "svc", code: "AmazonECS", name: "Amazon Elastic Container Service", svcCode: "AmazonECS", svcName: "Amazon Elastic Container Service",
		usageType: "Fargate-vCPU-Hours:perCPU", operation: "FargateTask", family: "Compute", unit: "hours",
		rate: "0.04048", desc: "AWS Fargate - vCPU - {loc}",
		attrs:  []string{"cputype", "perCPU"},
		amount: amtCount, lo: 1, hi: 16, step: one / 4, res: resTask, sp: true, weight: 4,
	},
	{
		short: "svc", code: "AmazonECS", name: "Amazon Elastic Container Service", svcCode: "AmazonECS", svcName: "Amazon Elastic Container Service",
		usageType: "Fargate-GB-Hours", operation: "FargateTask", family: "Compute", unit: "hours",
		rate: "0.004445", desc: "AWS Fargate - Memory - {loc}",
		attrs:  []string{"memorytype", "perGB"},
		amount: amtCount, lo: 2, hi: 120, step: one / 2, res: resTask, sp: true, weight: 4,
	},
	rds("db.t3.medium", "MySQL", "CreateDBInstance:0002", "0.068", "2", "4 GiB", "General purpose", "2", 4),
	rds("db.r5.large", "PostgreSQL", "CreateDBInstance:0014", "0.25", "2", "16 GiB", "Memory optimized", "4", 3),
	{
		short: "db", code: "AmazonRDS", name: rdsName, svcCode: "AmazonRDS", svcName: rdsName,
		usageType: "RDS:GP2-Storage", operation: "CreateDBInstance:0002", family: "Database Storage", unit: "GB-Mo",
		rate: "0.115", desc: "${rate} per GB-month of provisioned GP2 storage running MySQL",
		attrs: []string{"databaseEngine", "MySQL", "deploymentOption", "Single-AZ", "storageMedia", "SSD",
			"volumeType", "General Purpose"},
		amount: amtMonthly, lo: 20, hi: 2000, res: resDB, weight: 3,
	},
	{
		short: "mon", code: "AmazonCloudWatch", name: "AmazonCloudWatch", svcCode: "AmazonCloudWatch", svcName: "AmazonCloudWatch",
		usageType: "CW:MetricMonitorUsage", operation: "MetricStorage", family: "Metric", unit: "Metrics",
		rate: "0.30", desc: "${rate} per metric-month - first 10,000 metrics - {loc}",
		attrs:  []string{"group", "Metric", "groupDescription", "Metric"},
		amount: amtMonthly, lo: 10, hi: 5000, res: resNone, weight: 3,
	},
	{
		short: "mon", code: "AmazonCloudWatch", name: "AmazonCloudWatch", svcCode: "AmazonCloudWatch", svcName: "AmazonCloudWatch",
		usageType: "DataProcessing-Bytes", operation: "PutLogEvents", family: "Data Payload", unit: "GB",
		rate: "0.50", desc: "${rate} per GB - data ingested for Standard log class - {loc}",
		attrs:  []string{"group", "Ingested Logs", "groupDescription", "Existing system, application, and custom log files"},
		amount: amtLog, hi: 8, res: resLogGroup, weight: 3,
	},
	{
		short: "net", code: "AmazonEC2", name: ec2Name, svcCode: "AmazonEC2", svcName: ec2Name,
		usageType: "NatGateway-Hours", operation: "NatGateway", family: "NAT Gateway", unit: "Hrs",
		rate: "0.045", desc: "${rate} per NAT Gateway Hour",
		attrs:  []string{"group", "NGW:NatGateway", "groupDescription", "Hourly charge for NAT Gateways"},
		amount: amtHours, res: resNAT, weight: 3,
	},
	{
		short: "net", code: "AmazonEC2", name: ec2Name, svcCode: "AmazonEC2", svcName: ec2Name,
		usageType: "NatGateway-Bytes", operation: "NatGateway", family: "NAT Gateway", unit: "GB",
		rate: "0.045", desc: "${rate} per GB Data Processed by NAT Gateways",
		attrs:  []string{"group", "NGW:NatGateway", "groupDescription", "Charge for per GB data processed by NatGateways"},
		amount: amtLog, hi: 9, res: resNAT, weight: 3,
	},
	{
		short: "lb", code: "AWSELB", name: "Elastic Load Balancing", svcCode: "AWSELB", svcName: "Elastic Load Balancing",
		usageType: "LoadBalancerUsage", operation: "LoadBalancing:Application", family: "Load Balancer-Application", unit: "Hrs",
		rate: "0.0225", desc: "${rate} per Application LoadBalancer-hour (or partial hour)",
		attrs:  []string{"group", "ELB:Balancer", "groupDescription", "LoadBalancer hourly usage by Application Load Balancer"},
		amount: amtHours, res: resLB, weight: 3,
	},
	{
		short: "tbl", code: "AmazonDynamoDB", name: "Amazon DynamoDB", svcCode: "AmazonDynamoDB", svcName: "Amazon DynamoDB",
		usageType: "ReadRequestUnits", operation: "PayPerRequestThroughput", family: "Amazon DynamoDB PayPerRequest Throughput",
		unit: "ReadRequestUnits", rate: "0.00000025", desc: "$0.25 per million read request units",
		attrs:  []string{"group", "DDB-ReadUnits", "groupDescription", "DynamoDB PayPerRequest Read Request Units"},
		amount: amtCount, lo: 1, hi: 500000, step: one, res: resTable, weight: 3,
	},
	{
		short: "tbl", code: "AmazonDynamoDB", name: "Amazon DynamoDB", svcCode: "AmazonDynamoDB", svcName: "Amazon DynamoDB",
		usageType: "TimedStorage-ByteHrs", operation: "StandardStorage", family: "Database Storage", unit: "GB-Mo",
		rate: "0.25", desc: "${rate} per GB-Month of storage used beyond first 25 free GB-Months",
		amount: amtMonthly, lo: 1, hi: 500, res: resTable, weight: 2,
	},
	{
		short: "key", code: "awskms", name: "AWS Key Management Service", svcCode: "awskms", svcName: "AWS Key Management Service",
		usageType: "KMS-Keys", operation: "CreateKey", family: "Encryption Key", unit: "Keys",
		rate: "1.00", desc: "${rate} per customer managed key per month",
		amount: amtMonthly, lo: 1, hi: 30, res: resKey, weight: 2,
	},
}

// savingsPlanSpec is a Savings Plan the payer holds.
type savingsPlanSpec struct {
	offering   string // savingsPlan/OfferingType
	payment    string // savingsPlan/PaymentOption
	years      int
	commitment string // USD per hour
	rate       int64  // Savings Plan rate, percent of on-demand
	family     string // EC2 Instance Savings Plans: instance family
	region     string // EC2 Instance Savings Plans: region code
}

var savingsPlanSpecs = []savingsPlanSpec{
	{"ComputeSavingsPlans", "No Upfront", 1, "4.5", 72, "", ""},
	{"ComputeSavingsPlans", "Partial Upfront", 3, "2.0", 55, "", ""},
	{"EC2InstanceSavingsPlans", "All Upfront", 3, "1.2", 48, "m5", "us-east-1"},
}

var teams = []string{"Platform", "Data", "Web", "Mobile", "Machine Learning", "Security"}

var environments = []string{"production", "staging", "development"}

var envShort = []string{"prod", "stg", "dev"}

var costCenters = []string{"CC-1001", "CC-1002", "CC-1003", "CC-2040", "CC-3100"}

var creators = []string{
	"IAMUser:AIDAEXAMPLE7QDN3OHJY5:alice",
	"IAMUser:AIDAEXAMPLEF4RZ2WLQ7M:bob",
	"AssumedRole:AROAEXAMPLEK2Q8ZP5VYT:terraform",
	"AssumedRole:AROAEXAMPLEX9M3LD7RWE:github-actions",
}
