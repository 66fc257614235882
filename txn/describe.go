package txn

// DescribeTransactions and ListTransactions (KIP-664), the admin view of
// transactional ids, with Kafka's state names.

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeTransaction answers one transactional id of DescribeTransactions.
func (c *Coordinator) DescribeTransaction(now time.Time, transactionalID string) kmsg.DescribeTransactionsResponseTransactionState {
	s := kmsg.NewDescribeTransactionsResponseTransactionState()
	s.TransactionalID = transactionalID
	if transactionalID == "" {
		s.ErrorCode = kerr.InvalidRequest.Code
		return s
	}
	t := c.lookup(transactionalID)
	if t == nil {
		s.ErrorCode = kerr.TransactionalIDNotFound.Code
		return s
	}
	s.State = t.state.String()
	s.TimeoutMillis = t.timeoutMillis
	s.StartTimestamp = t.startMillis
	s.ProducerID = t.producerID
	s.ProducerEpoch = t.epoch
	for _, tp := range t.sortedPartitions() {
		if n := len(s.Topics); n > 0 && s.Topics[n-1].Topic == tp.Topic {
			s.Topics[n-1].Partitions = append(s.Topics[n-1].Partitions, tp.Partition)
			continue
		}
		topic := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
		topic.Topic = tp.Topic
		topic.Partitions = []int32{tp.Partition}
		s.Topics = append(s.Topics, topic)
	}
	return s
}

// ListTransactions answers ListTransactions with its filters (states,
// producer ids, v1+: duration, v2+: id pattern). Unknown state names are
// listed back in UnknownStateFilters. The duration filter keeps the
// transactions whose start is more than that long ago (an id with no
// transaction has start -1, so it passes, as in Kafka). The pattern is an
// RE2 expression that must match the whole id; an invalid one gets
// INVALID_REGULAR_EXPRESSION. The ids are listed in order.
func (c *Coordinator) ListTransactions(now time.Time, req *kmsg.ListTransactionsRequest) *kmsg.ListTransactionsResponse {
	resp := kmsg.NewPtrListTransactionsResponse()
	resp.Version = req.Version
	var states []state
	for _, name := range req.StateFilters {
		s, ok := stateNamed(name)
		if !ok {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
			continue
		}
		states = append(states, s)
	}
	duration := int64(-1)
	if req.Version >= 1 {
		duration = req.DurationFilterMillis
	}
	var pattern *regexp.Regexp
	if req.Version >= 2 && req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		re, err := regexp.Compile(`^(?:` + *req.TransactionalIDPattern + `)$`)
		if err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp
		}
		pattern = re
	}
	nowMillis := now.UnixMilli()
	for _, t := range c.txns {
		switch {
		case len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, t.producerID):
		case len(req.StateFilters) > 0 && !slices.Contains(states, t.state):
		case duration >= 0 && nowMillis-t.startMillis <= duration:
		case pattern != nil && !pattern.MatchString(t.id):
		default:
			s := kmsg.NewListTransactionsResponseTransactionState()
			s.TransactionalID = t.id
			s.ProducerID = t.producerID
			s.TransactionState = t.state.String()
			resp.TransactionStates = append(resp.TransactionStates, s)
		}
	}
	slices.SortFunc(resp.TransactionStates, func(a, b kmsg.ListTransactionsResponseTransactionState) int {
		return strings.Compare(a.TransactionalID, b.TransactionalID)
	})
	return resp
}
