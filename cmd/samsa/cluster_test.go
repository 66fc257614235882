package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/samsa-io/samsa/cli"
	"github.com/samsa-io/samsa/samsatest"
)

func TestClusterCommandLine(t *testing.T) {
	b := samsatest.Start(t)
	code, out, errOut := runCLI("cluster", "info", "-b", b.Addr(), "--apis")
	if code != 0 || !strings.Contains(out, "cluster id:") || !strings.Contains(out, b.Addr()) || !strings.Contains(out, "ApiVersions") {
		t.Errorf("info: exit %d:\n%s%s", code, out, errOut)
	}
	code, out, _ = runCLI("cluster", "health", "-b", b.Addr(), "--format", "json")
	var h cli.Health
	if err := json.Unmarshal([]byte(out), &h); code != 0 || err != nil || !h.Healthy {
		t.Errorf("health: exit %d, %v:\n%s", code, err, out)
	}
	b.Stop()
	if code, _, errOut := runCLI("cluster", "health", "-b", b.Addr()); code != 1 || !strings.Contains(errOut, "samsa serve") {
		t.Errorf("health of a stopped broker: exit %d: %s", code, errOut)
	}
}
