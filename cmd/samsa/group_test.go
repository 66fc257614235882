package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-io/samsa/samsatest"
)

func TestGroupCommands(t *testing.T) {
	b := samsatest.Start(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	if _, err := adm.CreateTopic(ctx, 2, -1, nil, "events"); err != nil {
		t.Fatal(err)
	}
	offsets := make(kadm.Offsets)
	offsets.Add(kadm.Offset{Topic: "events", Partition: 0, At: 0, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, "reporting", offsets); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runSamsa("group", "list", "-b", b.Addr(), "--format", "json")
	var listed []struct{ Group, State string }
	if code != 0 || json.Unmarshal([]byte(out), &listed) != nil || len(listed) != 1 || listed[0].Group != "reporting" {
		t.Errorf("group list: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runSamsa("group", "seek", "reporting", "-b", b.Addr(), "--to", "end", "--topic", "events", "--dry-run")
	if code != 0 || !strings.Contains(out, "Dry run: would move 2 offsets") {
		t.Errorf("group seek --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runSamsa("group", "describe", "reporting", "-b", b.Addr())
	if code != 0 || !strings.Contains(out, "state:       Empty") || !strings.Contains(out, "events  0          0") {
		t.Errorf("group describe: exit %d\n%s%s", code, out, errOut)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"group"}, 2, "missing subcommand"},
		{[]string{"group", "describe"}, 2, "missing group name"},
		{[]string{"group", "seek", "a", "b"}, 2, "too many arguments"},
		{[]string{"group", "list", "--frobnicate"}, 2, "unknown flag: --frobnicate"},
		{[]string{"group", "list", "--format", "xml"}, 2, `unknown --format "xml"`},
		{[]string{"group", "seek", "reporting", "-b", b.Addr(), "--to", "yesterday"}, 2, `bad --to "yesterday"`},
		{[]string{"group", "describe", "reportin", "-b", b.Addr()}, 1, `group "reportin" does not exist; did you mean "reporting"?`},
		{[]string{"group", "delete", "nope", "-b", b.Addr()}, 1, `group "nope" does not exist`},
		{[]string{"group", "list", "-b", samsatest.FreeAddr(t)}, 1, "cannot reach a broker"},
	} {
		code, _, errOut := runSamsa(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("samsa %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), code, errOut, tc.code, tc.want)
		}
	}
}
