package synth

import "github.com/costlake/costlake/internal/cur"

// Manifest column types as AWS writes them in legacy CUR manifests.
const (
	tString     = "String"
	tOptString  = "OptionalString"
	tDecimal    = "BigDecimal"
	tOptDecimal = "OptionalBigDecimal"
	tDateTime   = "DateTime"
	tInterval   = "Interval"
)

// columns is the CSV layout of every chunk, in AWS's legacy order:
// identity, bill, lineItem, product, pricing, reservation, savingsPlan,
// resourceTags, costCategory.
var columns = func() []cur.ManifestColumn {
	var cols []cur.ManifestColumn
	add := func(cat, typ string, names ...string) {
		for _, n := range names {
			cols = append(cols, cur.ManifestColumn{Category: cat, Name: n, Type: typ})
		}
	}
	add("identity", tString, "LineItemId")
	add("identity", tInterval, "TimeInterval")
	add("bill", tOptString, "InvoiceId")
	add("bill", tString, "InvoicingEntity", "BillingEntity", "BillType", "PayerAccountId")
	add("bill", tDateTime, "BillingPeriodStartDate", "BillingPeriodEndDate")
	add("lineItem", tString, "UsageAccountId", "LineItemType")
	add("lineItem", tDateTime, "UsageStartDate", "UsageEndDate")
	add("lineItem", tString, "ProductCode")
	add("lineItem", tOptString, "UsageType", "Operation", "AvailabilityZone", "ResourceId")
	add("lineItem", tDecimal, "UsageAmount")
	add("lineItem", tOptDecimal, "NormalizationFactor", "NormalizedUsageAmount")
	add("lineItem", tString, "CurrencyCode")
	add("lineItem", tOptDecimal, "UnblendedRate")
	add("lineItem", tDecimal, "UnblendedCost")
	add("lineItem", tOptDecimal, "BlendedRate")
	add("lineItem", tDecimal, "BlendedCost")
	add("lineItem", tString, "LineItemDescription")
	add("lineItem", tOptString, "TaxType")
	add("lineItem", tString, "LegalEntity")
	add("lineItem", tOptDecimal, "NetUnblendedRate", "NetUnblendedCost")
	add("product", tString, "ProductName")
	add("product", tOptString,
		"availability", "capacitystatus", "clockSpeed", "cputype", "currentGeneration",
		"databaseEngine", "dedicatedEbsThroughput", "deploymentOption", "durability", "ecu",
		"enhancedNetworkingSupported", "feeCode", "feeDescription", "fromLocation",
		"fromLocationType", "fromRegionCode", "group", "groupDescription", "instanceFamily",
		"instanceType", "instanceTypeFamily", "intelAvx2Available", "intelAvxAvailable",
		"intelTurboAvailable", "licenseModel", "location", "locationType", "marketoption",
		"maxIopsvolume", "maxThroughputvolume", "maxVolumeSize", "memory", "memorytype",
		"networkPerformance", "normalizationSizeFactor", "operatingSystem", "operation",
		"physicalProcessor", "preInstalledSw", "processorArchitecture", "processorFeatures",
		"productFamily", "region", "regionCode", "servicecode", "servicename", "sku", "storage",
		"storageClass", "storageMedia", "tenancy", "toLocation", "toLocationType",
		"toRegionCode", "transferType", "usagetype", "vcpu", "version", "volumeApiName",
		"volumeType")
	add("pricing", tOptString, "LeaseContractLength", "OfferingClass", "PurchaseOption",
		"RateCode", "RateId", "currency")
	add("pricing", tOptDecimal, "publicOnDemandCost", "publicOnDemandRate")
	add("pricing", tOptString, "term", "unit")
	add("reservation", tOptDecimal, "AmortizedUpfrontCostForUsage", "AmortizedUpfrontFeeForBillingPeriod")
	add("reservation", tOptString, "AvailabilityZone")
	add("reservation", tOptDecimal, "EffectiveCost")
	add("reservation", tOptString, "EndTime", "ModificationStatus")
	add("reservation", tOptDecimal, "NormalizedUnitsPerReservation", "NumberOfReservations",
		"RecurringFeeForUsage")
	add("reservation", tOptString, "ReservationARN", "StartTime", "SubscriptionId")
	add("reservation", tOptDecimal, "TotalReservedNormalizedUnits", "TotalReservedUnits",
		"UnitsPerReservation", "UnusedAmortizedUpfrontFeeForBillingPeriod",
		"UnusedNormalizedUnitQuantity", "UnusedQuantity", "UnusedRecurringFee", "UpfrontValue")
	add("savingsPlan", tOptDecimal, "TotalCommitmentToDate")
	add("savingsPlan", tOptString, "SavingsPlanARN")
	add("savingsPlan", tOptDecimal, "SavingsPlanRate", "UsedCommitment", "SavingsPlanEffectiveCost",
		"AmortizedUpfrontCommitmentForBillingPeriod", "RecurringCommitmentForBillingPeriod")
	add("savingsPlan", tOptString, "StartTime", "EndTime", "InstanceTypeFamily", "OfferingType",
		"PaymentOption", "PurchaseTerm", "Region")
	add("resourceTags", tOptString, "aws:createdBy", "user:CostCenter", "user:Environment", "user:Name")
	add("costCategory", tOptString, "Team")
	return cols
}()

var colIndex = func() map[string]int {
	m := make(map[string]int, len(columns))
	for i, c := range columns {
		m[c.Header()] = i
	}
	return m
}()

// col returns the position of a header in columns; it panics on a typo.
func col(header string) int {
	i, ok := colIndex[header]
	if !ok {
		panic("synth: no column " + header)
	}
	return i
}

// Positions of the columns the generator fills row by row.
var (
	cLineItemID      = col("identity/LineItemId")
	cTimeInterval    = col("identity/TimeInterval")
	cInvoicingEntity = col("bill/InvoicingEntity")
	cBillingEntity   = col("bill/BillingEntity")
	cBillType        = col("bill/BillType")
	cPayer           = col("bill/PayerAccountId")
	cBPStart         = col("bill/BillingPeriodStartDate")
	cBPEnd           = col("bill/BillingPeriodEndDate")

	cAccount       = col("lineItem/UsageAccountId")
	cType          = col("lineItem/LineItemType")
	cStart         = col("lineItem/UsageStartDate")
	cEnd           = col("lineItem/UsageEndDate")
	cProductCode   = col("lineItem/ProductCode")
	cUsageType     = col("lineItem/UsageType")
	cOperation     = col("lineItem/Operation")
	cAZ            = col("lineItem/AvailabilityZone")
	cResourceID    = col("lineItem/ResourceId")
	cUsageAmount   = col("lineItem/UsageAmount")
	cNormFactor    = col("lineItem/NormalizationFactor")
	cNormAmount    = col("lineItem/NormalizedUsageAmount")
	cCurrency      = col("lineItem/CurrencyCode")
	cUnblendedRate = col("lineItem/UnblendedRate")
	cUnblendedCost = col("lineItem/UnblendedCost")
	cBlendedRate   = col("lineItem/BlendedRate")
	cBlendedCost   = col("lineItem/BlendedCost")
	cDescription   = col("lineItem/LineItemDescription")
	cTaxType       = col("lineItem/TaxType")
	cLegalEntity   = col("lineItem/LegalEntity")
	cNetRate       = col("lineItem/NetUnblendedRate")
	cNetCost       = col("lineItem/NetUnblendedCost")

	cProductName = col("product/ProductName")
	cPUsageType  = col("product/usagetype")
	cPOperation  = col("product/operation")

	cLease          = col("pricing/LeaseContractLength")
	cOfferingClass  = col("pricing/OfferingClass")
	cPurchaseOption = col("pricing/PurchaseOption")
	cRateCode       = col("pricing/RateCode")
	cRateID         = col("pricing/RateId")
	cPCurrency      = col("pricing/currency")
	cODCost         = col("pricing/publicOnDemandCost")
	cODRate         = col("pricing/publicOnDemandRate")
	cTerm           = col("pricing/term")
	cUnit           = col("pricing/unit")

	cRAmortizedForUsage  = col("reservation/AmortizedUpfrontCostForUsage")
	cRAmortizedForPeriod = col("reservation/AmortizedUpfrontFeeForBillingPeriod")
	cREffectiveCost      = col("reservation/EffectiveCost")
	cREndTime            = col("reservation/EndTime")
	cRModification       = col("reservation/ModificationStatus")
	cRNormUnitsPerRes    = col("reservation/NormalizedUnitsPerReservation")
	cRNumber             = col("reservation/NumberOfReservations")
	cRRecurringForUsage  = col("reservation/RecurringFeeForUsage")
	cRARN                = col("reservation/ReservationARN")
	cRStartTime          = col("reservation/StartTime")
	cRSubscriptionID     = col("reservation/SubscriptionId")
	cRTotalNormUnits     = col("reservation/TotalReservedNormalizedUnits")
	cRTotalUnits         = col("reservation/TotalReservedUnits")
	cRUnitsPerRes        = col("reservation/UnitsPerReservation")
	cRUnusedAmortized    = col("reservation/UnusedAmortizedUpfrontFeeForBillingPeriod")
	cRUnusedNormQty      = col("reservation/UnusedNormalizedUnitQuantity")
	cRUnusedQty          = col("reservation/UnusedQuantity")
	cRUnusedRecurring    = col("reservation/UnusedRecurringFee")
	cRUpfrontValue       = col("reservation/UpfrontValue")

	cSPTotalCommitment = col("savingsPlan/TotalCommitmentToDate")
	cSPARN             = col("savingsPlan/SavingsPlanARN")
	cSPRate            = col("savingsPlan/SavingsPlanRate")
	cSPUsedCommitment  = col("savingsPlan/UsedCommitment")
	cSPEffectiveCost   = col("savingsPlan/SavingsPlanEffectiveCost")
	cSPAmortized       = col("savingsPlan/AmortizedUpfrontCommitmentForBillingPeriod")
	cSPRecurring       = col("savingsPlan/RecurringCommitmentForBillingPeriod")
	cSPStartTime       = col("savingsPlan/StartTime")
	cSPEndTime         = col("savingsPlan/EndTime")
	cSPFamily          = col("savingsPlan/InstanceTypeFamily")
	cSPOfferingType    = col("savingsPlan/OfferingType")
	cSPPaymentOption   = col("savingsPlan/PaymentOption")
	cSPPurchaseTerm    = col("savingsPlan/PurchaseTerm")
	cSPRegion          = col("savingsPlan/Region")

	cTagCreatedBy  = col("resourceTags/aws:createdBy")
	cTagCostCenter = col("resourceTags/user:CostCenter")
	cTagEnv        = col("resourceTags/user:Environment")
	cTagName       = col("resourceTags/user:Name")
	cTeam          = col("costCategory/Team")
)

// Columns returns the manifest columns every generated chunk carries, in
// CSV order. The slice is a copy.
func Columns() []cur.ManifestColumn { return append([]cur.ManifestColumn(nil), columns...) }
