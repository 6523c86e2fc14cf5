package main

import (
	"net/netip"
	"testing"
	"time"
)

func TestParseRunFor(t *testing.T) {
	cases := map[string]time.Duration{
		"":      time.Second,
		"250ms": 250 * time.Millisecond,
		"3s":    3 * time.Second,
		"4":     4 * time.Second,
		"soon":  time.Second,
	}
	for in, want := range cases {
		if got := parseRunFor(in); got != want {
			t.Errorf("parseRunFor(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestTakeOwnerFlag(t *testing.T) {
	args, owner := takeOwnerFlag([]string{"--a=1", "--owner-pid=42", "--b"})
	if owner != 42 {
		t.Fatalf("owner = %d, want 42", owner)
	}
	if len(args) != 2 || args[0] != "--a=1" || args[1] != "--b" {
		t.Fatalf("args = %v", args)
	}
}

func TestPickLBAddress(t *testing.T) {
	pool := netip.MustParsePrefix("127.0.0.0/8")
	used := map[netip.Addr]bool{}
	pick := func(requested string) string {
		t.Helper()
		ip, err := pickLBAddress(pool, used, requested)
		if err != nil {
			t.Fatal(err)
		}
		return ip
	}
	if ip := pick(""); ip != "127.0.0.2" {
		t.Fatalf("first address = %q, want 127.0.0.2 (skipping the network and 127.0.0.1)", ip)
	}
	used[netip.MustParseAddr("127.0.0.2")] = true
	if ip := pick(""); ip != "127.0.0.3" {
		t.Fatalf("second address = %q, want 127.0.0.3", ip)
	}
	if ip := pick("127.1.2.3"); ip != "127.1.2.3" {
		t.Fatalf("requested address = %q, want 127.1.2.3", ip)
	}
	if ip := pick("10.1.2.3"); ip != "127.0.0.3" {
		t.Fatalf("a requested address outside the pool is ignored; got %q", ip)
	}
}

func TestPickLBAddressReportsAnExhaustedPool(t *testing.T) {
	pool := netip.MustParsePrefix("192.0.2.0/30")
	used := map[netip.Addr]bool{}
	for _, ip := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		used[netip.MustParseAddr(ip)] = true
	}
	if ip, err := pickLBAddress(pool, used, ""); err == nil {
		t.Fatalf("got %q from a full pool, want an error", ip)
	}
}
