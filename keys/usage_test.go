package keys

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestUsageMonths(t *testing.T) {
	ctx := context.Background()
	s, clk := newStore(t, "")
	utc := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, time.UTC) }
	// 2026-03-31 23:30 in UTC-5 is already April in UTC: it counts in April.
	ny := time.FixedZone("UTC-5", -5*3600)
	records := []Usage{
		{Org: "org_a", KeyID: "key_1", Mode: ModeLive, Requests: 1, Credits: 1, At: utc(2026, 3, 1, 0)},
		{Org: "org_a", KeyID: "key_1", Mode: ModeLive, Requests: 1, Credits: 3, At: utc(2026, 3, 31, 23)},
		{Org: "org_a", KeyID: "key_2", Mode: ModeLive, Requests: 2, Credits: 2, At: utc(2026, 3, 15, 12)},
		{Org: "org_a", KeyID: "key_3", Mode: ModeTest, Requests: 5, Credits: 5, At: utc(2026, 3, 15, 12)},
		{Org: "org_a", KeyID: "key_1", Mode: ModeLive, Requests: 1, Credits: 1, At: time.Date(2026, 3, 31, 23, 30, 0, 0, ny)},
		{Org: "org_b", KeyID: "key_9", Mode: ModeLive, Requests: 7, Credits: 7, At: utc(2026, 3, 2, 0)},
		{Org: "org_a", KeyID: "key_1", Mode: ModeLive, Requests: 1, Credits: 1}, // At zero: the clock (2026-03-14)
	}
	for _, u := range records {
		if err := s.Record(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		org        string
		at         time.Time
		live, test Counts
		key1       KeyUsage
	}{
		{"march", "org_a", utc(2026, 3, 20, 0), Counts{5, 7}, Counts{5, 5}, KeyUsage{Live: Counts{3, 5}}},
		{"april (month boundary in UTC)", "org_a", utc(2026, 4, 1, 0), Counts{1, 1}, Counts{}, KeyUsage{Live: Counts{1, 1}}},
		{"other org", "org_b", utc(2026, 3, 1, 0), Counts{7, 7}, Counts{}, KeyUsage{}},
		{"empty month", "org_a", utc(2026, 2, 10, 0), Counts{}, Counts{}, KeyUsage{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := s.Month(tc.org, tc.at)
			if err != nil {
				t.Fatal(err)
			}
			if u.Live != tc.live || u.Test != tc.test || u.Keys["key_1"] != tc.key1 {
				t.Fatalf("Month = live %+v test %+v key_1 %+v; want %+v %+v %+v", u.Live, u.Test, u.Keys["key_1"], tc.live, tc.test, tc.key1)
			}
			if !u.Month.Equal(MonthStart(tc.at)) {
				t.Errorf("Month start = %v", u.Month)
			}
		})
	}
	u, _ := s.Month("org_a", utc(2026, 3, 20, 0))
	if u.Keys["key_3"].Test != (Counts{5, 5}) || u.Keys["key_3"].Live != (Counts{}) {
		t.Errorf("test-mode key usage = %+v", u.Keys["key_3"])
	}
	u.Keys["key_1"] = KeyUsage{}
	if again, _ := s.Month("org_a", utc(2026, 3, 20, 0)); again.Keys["key_1"].Live.Requests != 3 {
		t.Error("a caller changed the stored usage")
	}

	clk.Set(utc(2026, 5, 1, 0))
	s.PruneUsage(utc(2026, 4, 15, 0))
	if u, _ := s.Month("org_a", utc(2026, 3, 20, 0)); u.Live.Requests != 0 {
		t.Error("PruneUsage kept March")
	}
	if u, _ := s.Month("org_a", utc(2026, 4, 20, 0)); u.Live.Requests != 1 {
		t.Error("PruneUsage dropped April")
	}
}

func TestUsageInvalid(t *testing.T) {
	s, _ := newStore(t, "")
	for _, u := range []Usage{
		{Mode: ModeLive, Requests: 1},
		{Org: "o", Mode: "prod", Requests: 1},
		{Org: "o", Mode: ModeLive, Requests: -1},
	} {
		if err := s.Record(context.Background(), u); !errors.Is(err, ErrInvalid) {
			t.Errorf("Record(%+v) = %v", u, err)
		}
	}
}
