package reseller

import "strings"

// Tables of a customer's own Iceberg namespace (CustomerNamespace): the
// rows of its closed cycles only, copied from billing.resale_line_items
// and billing.invoices when a cycle closes, so a reader given this
// namespace never sees another customer's files.
const (
	CustomerResaleTable   = "resale_line_items"
	CustomerInvoicesTable = "invoices"
)

// CustomerNamespacePrefix begins every customer's namespace.
const CustomerNamespacePrefix = "customer_"

// CustomerNamespace is the Iceberg namespace of a customer's own tables:
// customer_<id> with dashes as underscores, so SQL engines need no
// quoting (IDs hold no underscores, so no two customers share one).
func CustomerNamespace(customerID string) string {
	return CustomerNamespacePrefix + strings.ReplaceAll(customerID, "-", "_")
}
