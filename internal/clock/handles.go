package clock

import (
	"time"

	"github.com/costlake/costlake/internal/contract"
)

// Now is the typed handle of NowActivity.
var Now = contract.LocalActivity[time.Time](NowActivity)
