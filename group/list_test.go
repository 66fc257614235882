package group

import (
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func listed(groups []kmsg.ListGroupsResponseGroup) []string {
	var out []string
	for _, g := range groups {
		out = append(out, g.Group+":"+g.GroupState+":"+g.GroupType+":"+g.ProtocolType)
	}
	return out
}

func TestListGroupsFilters(t *testing.T) {
	h := newHarness(t)
	h.commit(8, "simple", "", -1, map[string]map[int32]int64{"orders": {0: 1}})
	h.joinOne("live", "consumer", "orders")

	all := []string{"live:Stable:classic:consumer", "simple:Empty:classic:"}
	for _, tc := range []struct {
		states, types []string
		want          []string
	}{
		{nil, nil, all},
		{[]string{"stable"}, nil, all[:1]},
		{[]string{" EMPTY "}, nil, all[1:]},
		{[]string{"Empty", "Stable"}, nil, all},
		{[]string{"Dead"}, nil, nil},
		{nil, []string{"Classic"}, all},
		{nil, []string{"consumer"}, nil},
		{nil, []string{"share"}, nil},
		{[]string{"stable"}, []string{"classic"}, all[:1]},
	} {
		if got := listed(h.c.ListGroups(5, tc.states, tc.types)); !slices.Equal(got, tc.want) {
			t.Errorf("states %q types %q: %v, want %v", tc.states, tc.types, got, tc.want)
		}
	}
}

func TestDescribeGroup(t *testing.T) {
	h := newHarness(t)
	member, gen := h.joinOne("live", "consumer", "orders")

	d := h.c.DescribeGroup(5, "live")
	if d.ErrorCode != 0 || d.Group != "live" || d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != "range" ||
		len(d.Members) != 1 || d.Members[0].MemberID != member {
		t.Fatalf("describe live (generation %d): %+v", gen, d)
	}

	d = h.c.DescribeGroup(5, "nobody")
	if d.ErrorCode != 0 || d.State != "Dead" || d.Group != "nobody" {
		t.Fatalf("describe unknown v5: %+v", d)
	}
	d = h.c.DescribeGroup(6, "nobody")
	if d.ErrorCode != kerr.GroupIDNotFound.Code || d.State != "Dead" || d.ErrorMessage == nil {
		t.Fatalf("describe unknown v6: %+v", d)
	}
}

func TestConsumerGroupDescribeOfOtherGroups(t *testing.T) {
	h := newHarness(t)
	h.commit(8, "simple", "", -1, map[string]map[int32]int64{"orders": {0: 1}})
	for _, tc := range []struct {
		id, msg string
		code    int16
	}{
		{"", "", kerr.InvalidGroupID.Code},
		{"nobody", "not found", kerr.GroupIDNotFound.Code},
		{"simple", "not a consumer group", kerr.GroupIDNotFound.Code},
	} {
		d := h.c.ConsumerGroupDescribe(0, tc.id, false)
		if d.ErrorCode != tc.code || d.Group != tc.id {
			t.Errorf("%q: %+v", tc.id, d)
		}
		if tc.msg != "" && (d.ErrorMessage == nil || !strings.Contains(*d.ErrorMessage, tc.msg)) {
			t.Errorf("%q: message %v, want %q", tc.id, d.ErrorMessage, tc.msg)
		}
	}
}

func TestDeleteGroup(t *testing.T) {
	h := newHarness(t)
	if code, recs := h.c.DeleteGroup(h.now, "nobody"); code != kerr.GroupIDNotFound.Code || recs != nil {
		t.Fatalf("delete unknown: %d %v", code, recs)
	}

	member, gen := h.joinOne("live", "consumer", "orders")
	h.commit(7, "live", member, gen, map[string]map[int32]int64{"orders": {0: 1, 1: 2}})
	if code, recs := h.c.DeleteGroup(h.now, "live"); code != kerr.NonEmptyGroup.Code || recs != nil {
		t.Fatalf("delete live: %d %v", code, recs)
	}

	h.leave("live", member)
	h.until(h.now.Add(h.cfg.Classic.InitialRebalanceDelay))
	if s := h.c.groups["live"].state(); s != "Empty" {
		t.Fatalf("after leave the group is %s", s)
	}
	code, recs := h.c.DeleteGroup(h.now, "live")
	if code != 0 || len(recs) != 3 {
		t.Fatalf("delete empty: %d, %d records", code, len(recs))
	}
	for i, r := range recs {
		if r.Value != nil {
			t.Fatalf("record %d is not a tombstone", i)
		}
		if v, _ := keyVersion(r.Key); (i < 2 && v != 1) || (i == 2 && v != 2) {
			t.Fatalf("record %d has key version %d", i, v)
		}
	}
	h.log = append(h.log, recs...)
	if len(h.c.groups) != 0 {
		t.Fatalf("groups left: %v", dump(h.c))
	}
	if got := h.fetch("live", nil); len(got.Topics) != 0 {
		t.Fatalf("offsets left: %+v", got)
	}
	h.checkReplay()
}

func TestClassicCallsToUnknownGroups(t *testing.T) {
	h := newHarness(t)
	code := func(r kmsg.Response) int16 {
		switch r := r.(type) {
		case *kmsg.JoinGroupResponse:
			return r.ErrorCode
		case *kmsg.SyncGroupResponse:
			return r.ErrorCode
		case *kmsg.HeartbeatResponse:
			return r.ErrorCode
		case *kmsg.LeaveGroupResponse:
			return r.ErrorCode
		}
		t.Fatalf("response %T", r)
		return 0
	}
	for _, tc := range []struct {
		name string
		do   func(Call) Output
		want int16
	}{
		{"join with a member id", func(c Call) Output { return h.c.JoinGroup(c, joinRequest("g", "m-1", "consumer")) }, kerr.UnknownMemberID.Code},
		{"join without a group id", func(c Call) Output { return h.c.JoinGroup(c, joinRequest("", "", "consumer")) }, kerr.InvalidGroupID.Code},
		{"sync", func(c Call) Output {
			return h.c.SyncGroup(c, &kmsg.SyncGroupRequest{Group: "g", MemberID: "m"})
		}, kerr.UnknownMemberID.Code},
		{"sync without a group id", func(c Call) Output { return h.c.SyncGroup(c, &kmsg.SyncGroupRequest{MemberID: "m"}) }, kerr.InvalidGroupID.Code},
		{"heartbeat", func(c Call) Output {
			return h.c.Heartbeat(c, &kmsg.HeartbeatRequest{Group: "g", MemberID: "m"})
		}, kerr.UnknownMemberID.Code},
		{"leave", func(c Call) Output {
			return h.c.LeaveGroup(c, &kmsg.LeaveGroupRequest{Group: "g", MemberID: "m"})
		}, kerr.UnknownMemberID.Code},
	} {
		call := h.call(3)
		out := h.take(tc.do(call))
		if len(out.Replies) != 1 || out.Replies[0].Token != call.Token {
			t.Fatalf("%s: replies %+v", tc.name, out.Replies)
		}
		if got := code(out.Replies[0].Response); got != tc.want {
			t.Errorf("%s: code %d, want %d", tc.name, got, tc.want)
		}
		if len(out.Records) != 0 || len(h.c.groups) != 0 {
			t.Errorf("%s: records %d, groups %v", tc.name, len(out.Records), dump(h.c))
		}
	}
}

// A join refused before anyone joined (a session timeout out of bounds)
// makes no group; one that is told to rejoin with its member id does.
func TestRefusedJoinMakesNoGroup(t *testing.T) {
	h := newHarness(t)
	req := joinRequest("g", "", "consumer", "orders")
	req.SessionTimeoutMillis = 1
	call := h.call(5)
	out := h.take(h.c.JoinGroup(call, req))
	if r := h.replies[call.Token].(*kmsg.JoinGroupResponse); r.ErrorCode != kerr.InvalidSessionTimeout.Code {
		t.Fatalf("join: %+v", r)
	}
	if len(out.Records) != 0 || len(h.c.groups) != 0 {
		t.Fatalf("refused join left records %d, groups %v", len(out.Records), dump(h.c))
	}

	call = h.call(5)
	out = h.take(h.c.JoinGroup(call, joinRequest("g", "", "consumer", "orders")))
	if r := h.replies[call.Token].(*kmsg.JoinGroupResponse); r.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("join: %+v", r)
	}
	if len(out.Records) != 1 || h.c.groups["g"] == nil {
		t.Fatalf("first join wrote %d records, groups %v", len(out.Records), dump(h.c))
	}
	h.checkReplay()
}

func TestConsumerHeartbeatToClassicGroups(t *testing.T) {
	h := newHarness(t)
	h.joinOne("live", "consumer", "orders")
	hb := func(group string, epoch int32) *kmsg.ConsumerGroupHeartbeatResponse {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group = group
		req.MemberID = "m"
		req.MemberEpoch = epoch
		req.RebalanceTimeoutMillis = 10_000
		req.SubscribedTopicNames = []string{"orders"}
		call := h.call(0)
		out := h.take(h.c.ConsumerGroupHeartbeat(call, req))
		if len(out.Records) != 0 {
			t.Fatalf("refused heartbeat wrote %d records", len(out.Records))
		}
		return h.replies[call.Token].(*kmsg.ConsumerGroupHeartbeatResponse)
	}
	for _, tc := range []struct {
		group string
		epoch int32
		want  int16
	}{
		{"live", 0, kerr.GroupIDNotFound.Code},
		{"live", 3, kerr.GroupIDNotFound.Code},
		{"nobody", 3, kerr.GroupIDNotFound.Code},
		{"nobody", -1, kerr.GroupIDNotFound.Code},
		{"", 0, kerr.InvalidRequest.Code},
	} {
		if r := hb(tc.group, tc.epoch); r.ErrorCode != tc.want || r.ErrorMessage == nil {
			t.Errorf("%q epoch %d: %+v, want code %d", tc.group, tc.epoch, r, tc.want)
		}
	}
	if g := h.c.groups["live"]; g.typ() != "classic" || g.state() != "Stable" {
		t.Fatalf("live group became %s %s", g.typ(), g.state())
	}
}
