package onboard

import (
	"github.com/costlake/costlake/internal/contract"
)

// Typed handles of the onboarding's activities: workflows call them, the worker
// registers the implementations through them (see package contract).
var (
	PublishStackTemplate  = contract.Activity[PublishStackTemplateInput, PublishStackTemplateResult](PublishStackTemplateActivity)
	DescribeCustomerStack = contract.Activity[DescribeCustomerStackInput, DescribeCustomerStackResult](DescribeCustomerStackActivity)
	ValidateAccess        = contract.Activity[ValidateAccessInput, ValidateAccessResult](ValidateAccessActivity)
	RemindCustomer        = contract.Action[RemindCustomerInput](RemindCustomerActivity)
	CheckSetup            = contract.Activity[CheckSetupInput, CheckSetupResult](CheckSetupActivity)
	RecordStatus          = contract.Action[StatusRecord](RecordStatusActivity)
)
