package activities

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/costlake/costlake/internal/awsauth"
	"github.com/costlake/costlake/internal/blob"
	"github.com/costlake/costlake/internal/contract/cycle"
	"github.com/costlake/costlake/internal/payer"
	"github.com/costlake/costlake/internal/rebilling"
	"github.com/costlake/costlake/internal/reseller"
)

// Destinations opens export locations and refuses the ones that are not
// the customer's: costlake's own warehouse and templates, and gs://
// buckets without the customer's ownership file.
type Destinations struct {
	AWS
	// Warehouse and Templates are costlake's own locations.
	Warehouse, Templates string
}

// errReserved: a destination inside costlake's own warehouse or templates
// location. Exports, probes and reseller exports never write there.
var errReserved = errors.New("export destination is costlake's own storage")

// errNotOwned: a gs:// destination without the customer's ownership file.
var errNotOwned = errors.New("export destination not proved to be the customer's")

// maxOwnershipFile bounds what costlake reads of an ownership file.
const maxOwnershipFile = 1 << 10

// reservedLocations are where costlake keeps its own data: the lake's
// warehouse and the published customer stack templates.
func (d *Destinations) reservedLocations() map[string]blob.Location {
	out := map[string]blob.Location{}
	add := func(name, raw string) {
		if raw == "" {
			return
		}
		if !strings.Contains(raw, "://") && !filepath.IsAbs(raw) {
			if abs, err := filepath.Abs(raw); err == nil {
				raw = abs
			}
		}
		if loc, err := blob.ParseLocation(raw); err == nil {
			out[name] = loc
		}
	}
	add("warehouse", d.Warehouse)
	add("templates", d.Templates)
	return out
}

// refuseReserved fails for a destination in the warehouse's or the
// templates' bucket (any prefix: a bucket is one permission boundary), or
// a local folder inside or above either.
func (d *Destinations) refuseReserved(dest blob.Location) error {
	for name, r := range d.reservedLocations() {
		if r.Scheme != dest.Scheme {
			continue
		}
		clash := r.Bucket == dest.Bucket
		if r.Scheme == "file" {
			clash = within(dest.Prefix, r.Prefix) || within(r.Prefix, dest.Prefix)
		}
		if clash {
			return fmt.Errorf("%w: %s is in the %s location; choose the customer's own bucket", errReserved, dest, name)
		}
	}
	return nil
}

// within reports whether the slash path p is root or below it.
func within(p, root string) bool {
	return root == "" || p == root || strings.HasPrefix(p, root+"/")
}

// checkDestination is what a customer's destination must pass when it is
// saved and before every export: valid fields, not costlake's own
// storage, and for gs:// without an operator override, the customer's
// ownership file under the prefix naming the customer. Errors wrapping
// reseller.ErrInvalid, errReserved or errNotOwned are the request's
// fault; any other is worth a retry.
func (ds *Destinations) checkDestination(ctx context.Context, customer string, d reseller.Destination) error {
	if err := d.Validate(); err != nil {
		return err
	}
	loc, _ := blob.ParseLocation(d.URL) // Validate parsed it
	if err := ds.refuseReserved(loc); err != nil {
		return err
	}
	if loc.Scheme != "gs" || d.OperatorOverride {
		return nil
	}
	store, err := ds.Blobs.Open(ctx, loc)
	if err != nil {
		return err
	}
	if c, ok := store.(io.Closer); ok {
		defer c.Close()
	}
	key := loc.Key(reseller.OwnershipFile)
	proof := fmt.Sprintf("write gs://%s/%s holding the line %q (or an unscoped operator sets operator_override)", loc.Bucket, key, customer)
	rc, err := store.Open(ctx, key)
	switch {
	case errors.Is(err, blob.ErrNotFound), errors.Is(err, blob.ErrBucketNotFound):
		return fmt.Errorf("%w: no ownership file; %s", errNotOwned, proof)
	case errors.Is(err, blob.ErrAccessDenied):
		return fmt.Errorf("%w: costlake may not read the ownership file; grant it read on the bucket and %s", errNotOwned, proof)
	case err != nil:
		return err
	}
	defer rc.Close()
	line, err := bufio.NewReader(io.LimitReader(rc, maxOwnershipFile)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if strings.TrimSpace(line) != customer {
		// Never echo the file: it is the bucket owner's text.
		return fmt.Errorf("%w: the ownership file names another customer; %s", errNotOwned, proof)
	}
	return nil
}

// destinationFault tells whether checkDestination's error is the
// destination's fault rather than a passing failure.
func destinationFault(err error) bool {
	return errors.Is(err, reseller.ErrInvalid) || errors.Is(err, errReserved) || errors.Is(err, errNotOwned)
}

// openDestination opens an export destination: S3 with the given role
// when set, GCS and local folders with the worker's own credentials. The
// role session names the customer whose export it is ("" for the
// reseller's own).
func (d *Destinations) openDestination(ctx context.Context, url string, access *payer.Access, customer string) (rebilling.Destination, error) {
	loc, err := blob.ParseLocation(url)
	if err != nil {
		return rebilling.Destination{}, cycleError(cycle.ErrTypeDestination, "export destination: %v", err)
	}
	if err := d.refuseReserved(loc); err != nil {
		return rebilling.Destination{}, cycleError(cycle.ErrTypeDestination, "%v", err)
	}
	opener := d.Blobs
	if access != nil && loc.Scheme == "s3" {
		cfg, err := d.payerConfig(ctx, *access, awsauth.Session{Purpose: "export", Customer: customer})
		if err != nil {
			return rebilling.Destination{}, err
		}
		opener.S3.Credentials = cfg.Credentials
		if access.Region != "" {
			opener.S3.Region = access.Region
		}
	}
	store, err := opener.Open(ctx, loc)
	if errors.Is(err, blob.ErrOutsideRoot) {
		return rebilling.Destination{}, cycleError(cycle.ErrTypeDestination, "export destination: %v", err)
	}
	if err != nil {
		return rebilling.Destination{}, classify(err)
	}
	return rebilling.Destination{Store: store, Loc: loc}, nil
}
