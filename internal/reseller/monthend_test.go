package reseller

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// The month-end records: a hold and its release, an acceptance by payer,
// the webhook endpoint, delivered events once, the newest crawl, the
// day's Cost Explorer answer.
func TestMonthEndRecords(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if _, err := s.HoldOf(ctx, "acme"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := s.PutHold(ctx, Hold{CustomerID: "acme", Reason: "dispute", HeldBy: "op"}); err != nil {
		t.Fatal(err)
	}
	if h, err := s.HoldOf(ctx, "acme"); err != nil || h.Reason != "dispute" || h.HeldBy != "op" {
		t.Fatalf("%+v %v", h, err)
	}
	if h, err := s.ReleaseHold(ctx, "acme"); err != nil || h.Reason != "dispute" {
		t.Fatalf("%+v %v", h, err)
	}
	if _, err := s.ReleaseHold(ctx, "acme"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second release: %v", err)
	}

	if _, err := s.AcceptDifference(ctx, Acceptance{CustomerID: "acme", Period: "2026-10", PayerAccountID: "111122223333", Reason: "credit", AcceptedBy: "op"}); err != nil {
		t.Fatal(err)
	}
	acc, err := s.Acceptances(ctx, "acme", "2026-10")
	if err != nil || len(acc) != 1 || acc["111122223333"].AcceptedBy != "op" {
		t.Fatalf("%+v %v", acc, err)
	}
	if acc, _ := s.Acceptances(ctx, "acme", "2026-11"); len(acc) != 0 {
		t.Fatalf("another period: %+v", acc)
	}

	if _, err := s.WebhookOf(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := s.PutWebhook(ctx, Webhook{URL: "https://hooks.example.com", SecretRef: "env:HOOK", Events: []string{"cycle.closed"}}); err != nil {
		t.Fatal(err)
	}
	w, err := s.WebhookOf(ctx)
	if err != nil || !w.Wants("cycle.closed") || w.Wants("payer.stale") {
		t.Fatalf("%+v %v", w, err)
	}

	for range 2 {
		if err := s.MarkDelivered(ctx, "evt-1", "cycle.closed"); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := s.EventDelivered(ctx, "evt-1"); err != nil || !ok {
		t.Fatal(ok, err)
	}

	day := time.Date(2026, 11, 12, 6, 0, 0, 0, time.UTC)
	for _, at := range []time.Time{day, day.Add(-time.Hour)} { // an older one changes nothing
		if err := s.RecordCrawl(ctx, Crawl{PayerAccountID: "111122223333", SucceededAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := s.LastCrawl(ctx, "111122223333"); err != nil || !c.SucceededAt.Equal(day) {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := s.LastCrawl(ctx, "999999999999"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}

	if err := s.PutCostExplorerMonth(ctx, "111122223333", "2026-10", "2026-11-12", json.RawMessage(`[]`)); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.CostExplorerMonth(ctx, "111122223333", "2026-10", "2026-11-12"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, ok, _ := s.CostExplorerMonth(ctx, "111122223333", "2026-10", "2026-11-13"); ok {
		t.Fatal("yesterday's answer is not today's")
	}
}
