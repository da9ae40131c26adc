package lakehouse

import (
	"fmt"

	"github.com/apache/iceberg-go"

	"github.com/costlake/costlake/internal/billing"
	"github.com/costlake/costlake/internal/money"
)

// IcebergSchema returns the Iceberg schema of a billing table. The catalog
// assigns the final field IDs; writers read them back from the loaded table.
func IcebergSchema(bs *billing.Schema) *iceberg.Schema {
	fields := make([]iceberg.NestedField, 0, len(bs.Columns))
	id := len(bs.Columns) + 1 // map key/value IDs come after the top-level IDs
	for i, c := range bs.Columns {
		f := iceberg.NestedField{ID: i + 1, Name: c.Name, Doc: c.Doc, Type: icebergType(c.Kind, &id)}
		fields = append(fields, f)
	}
	return iceberg.NewSchema(0, fields...)
}

func icebergType(k billing.Kind, nextID *int) iceberg.Type {
	switch k {
	case billing.Decimal:
		return iceberg.DecimalTypeOf(money.Precision, money.Scale)
	case billing.Timestamp:
		return iceberg.PrimitiveTypes.TimestampTz
	case billing.Map:
		m := &iceberg.MapType{KeyID: *nextID, KeyType: iceberg.PrimitiveTypes.String,
			ValueID: *nextID + 1, ValueType: iceberg.PrimitiveTypes.String}
		*nextID += 2
		return m
	default:
		return iceberg.PrimitiveTypes.String
	}
}

// partitionSpec partitions by payer and billing period (identity), so a
// restated period replaces exactly its own files.
func partitionSpec(bs *billing.Schema, schema *iceberg.Schema) (iceberg.PartitionSpec, error) {
	spec, err := iceberg.NewPartitionSpecOpts(
		iceberg.AddPartitionFieldByName(bs.Payer, bs.Payer, iceberg.IdentityTransform{}, schema, nil),
		iceberg.AddPartitionFieldByName(bs.Period, bs.Period, iceberg.IdentityTransform{}, schema, nil),
	)
	if err != nil {
		return spec, fmt.Errorf("partition spec: %w", err)
	}
	return spec, nil
}
