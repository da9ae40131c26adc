package ingest

import (
	"github.com/costlake/costlake/internal/contract"
)

// Typed handles of the ingestion's activities: workflows call them, the worker
// registers the implementations through them (see package contract).
var (
	LocateDelivery     = contract.Activity[LocateDeliveryInput, LocateDeliveryResult](LocateDeliveryActivity)
	ConvertChunk       = contract.Activity[ConvertChunkInput, ConvertChunkResult](ConvertChunkActivity)
	CommitPeriod       = contract.Activity[CommitPeriodInput, CommitPeriodResult](CommitPeriodActivity)
	ReconcilePeriod    = contract.Activity[ReconcilePeriodInput, ReconcilePeriodResult](ReconcilePeriodActivity)
	RemoveDataFiles    = contract.Action[RemoveDataFilesInput](RemoveDataFilesActivity)
	AdjustClosedCycles = contract.Activity[AdjustClosedCyclesInput, AdjustClosedCyclesResult](AdjustClosedCyclesActivity)
)
