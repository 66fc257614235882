package broker

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errorCountsOf collects e's series as "api/ERROR" → count.
func errorCountsOf(t *testing.T, e *requestErrors) map[string]float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1000)
	e.collect(ch)
	close(ch)
	out := map[string]float64{}
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{}
		for _, l := range pb.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		out[labels["api"]+"/"+labels["error"]] += pb.GetCounter().GetValue()
	}
	return out
}

// countResponse encodes resp as the answer to a request of its key and
// version and counts its errors, as the connection does.
func countResponse(m *brokerMetrics, resp kmsg.Response) {
	req := &request{key: resp.Key(), version: resp.GetVersion(), correlationID: 1}
	out := outFrame{buf: encodeResponse(req, resp)}
	m.responseErrors(req, resp, &out)
}

func TestResponseErrorsCountEachCodeSent(t *testing.T) {
	m := newBrokerMetrics(&Broker{apis: newAPITable()})

	produce := kmsg.NewPtrProduceResponse()
	produce.SetVersion(11)
	for _, codes := range [][]int16{{0, 6, 6}, {3}} {
		st := kmsg.NewProduceResponseTopic()
		for p, code := range codes {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition, sp.ErrorCode = int32(p), code
			st.Partitions = append(st.Partitions, sp)
		}
		produce.Topics = append(produce.Topics, st)
	}
	countResponse(m, produce)

	// Fetch v4 has no top-level code: the one set is not sent, nor counted.
	for _, v := range []int16{4, 12} {
		fetch := newFetchResponse(v)
		fetch.ErrorCode = kerr.FetchSessionIDNotFound.Code
		st := kmsg.NewFetchResponseTopic()
		sp := kmsg.NewFetchResponseTopicPartition()
		sp.ErrorCode = kerr.OffsetOutOfRange.Code
		st.Partitions = append(st.Partitions, sp, kmsg.NewFetchResponseTopicPartition())
		fetch.Topics = append(fetch.Topics, st)
		countResponse(m, fetch)
	}

	metadata := kmsg.NewPtrMetadataResponse()
	metadata.SetVersion(12)
	for _, code := range []int16{3, 0} {
		st := kmsg.NewMetadataResponseTopic()
		st.Topic, st.ErrorCode = kmsg.StringPtr(fmt.Sprint("t", code)), code
		for _, pc := range []int16{0, 5} {
			sp := kmsg.NewMetadataResponseTopicPartition()
			sp.ErrorCode = pc
			st.Partitions = append(st.Partitions, sp)
		}
		metadata.Topics = append(metadata.Topics, st)
	}
	countResponse(m, metadata)

	// AddPartitionsToTxn v3 has no top-level code (setTxnError sets it
	// anyway); v4 has, and no partitions when it is set.
	for _, v := range []int16{3, 4} {
		add := kmsg.NewPtrAddPartitionsToTxnResponse()
		add.SetVersion(v)
		add.ErrorCode = kerr.ConcurrentTransactions.Code
		if v < 4 {
			st := kmsg.NewAddPartitionsToTxnResponseTopic()
			for range 2 {
				sp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				sp.ErrorCode = kerr.ConcurrentTransactions.Code
				st.Partitions = append(st.Partitions, sp)
			}
			add.Topics = append(add.Topics, st)
		}
		countResponse(m, add)
	}

	// A response without errors counts nothing.
	ok := kmsg.NewPtrHeartbeatResponse()
	ok.SetVersion(4)
	countResponse(m, ok)

	// ApiVersions' header has no tagged fields, even in its flexible v3+.
	versions := kmsg.NewPtrApiVersionsResponse()
	versions.SetVersion(3)
	versions.ErrorCode = kerr.UnsupportedVersion.Code
	countResponse(m, versions)

	want := map[string]float64{
		"Produce/NOT_LEADER_OR_FOLLOWER":             2,
		"Produce/UNKNOWN_TOPIC_OR_PARTITION":         1,
		"Fetch/OFFSET_OUT_OF_RANGE":                  2,
		"Fetch/FETCH_SESSION_ID_NOT_FOUND":           1,
		"Metadata/UNKNOWN_TOPIC_OR_PARTITION":        1,
		"Metadata/LEADER_NOT_AVAILABLE":              2,
		"AddPartitionsToTxn/CONCURRENT_TRANSACTIONS": 3,
		"ApiVersions/UNSUPPORTED_VERSION":            1,
	}
	if got := errorCountsOf(t, m.errors); !reflect.DeepEqual(got, want) {
		t.Errorf("counted %v\nwant    %v", got, want)
	}
}

func TestRequestErrorCodesOutsideTheTable(t *testing.T) {
	m := newBrokerMetrics(&Broker{apis: newAPITable()})
	m.requestError(int16(kmsg.Produce), -1)
	m.requestError(int16(kmsg.Produce), errorCodeSlots-2) // the table's last
	m.requestError(int16(kmsg.Produce), errorCodeSlots-1) // past it
	m.requestError(int16(kmsg.Produce), -7)
	m.requestError(int16(kmsg.Produce), 0) // NONE
	m.requestError(-1, 3)                  // keys outside the table: ignored
	m.requestError(999, 3)
	var none *brokerMetrics
	none.requestError(0, 3)
	want := map[string]float64{
		"Produce/UNKNOWN_SERVER_ERROR":            1,
		"Produce/" + fmt.Sprint(errorCodeSlots-2): 1,
		"Produce/" + fmt.Sprint(errorCodeSlots-1): 1,
		"Produce/-7": 1,
	}
	if got := errorCountsOf(t, m.errors); !reflect.DeepEqual(got, want) {
		t.Errorf("counted %v\nwant    %v", got, want)
	}
}

// fillErrorCodes sets every ErrorCode field under v to code, giving each
// slice one element and each nil pointer to a struct a value, so that
// every code a response can carry is there.
func fillErrorCodes(v reflect.Value, code int16) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.Type().Elem().Kind() != reflect.Struct {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fillErrorCodes(v.Elem(), code)
	case reflect.Slice:
		if k := v.Type().Elem().Kind(); k != reflect.Struct && k != reflect.Pointer {
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fillErrorCodes(v.Index(0), code)
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Name == "ErrorCode" && f.Type.Kind() == reflect.Int16 {
				v.Field(i).SetInt(int64(code))
				continue
			}
			fillErrorCodes(v.Field(i), code)
		}
	}
}

// TestEveryServedVersionSendsCountedErrors fills every error code of
// every API's response and counts them in each version the broker
// serves: each version carries at least one, and each response decodes
// back (decodeSent), ApiVersions and the flexible versions included.
func TestEveryServedVersionSendsCountedErrors(t *testing.T) {
	apis := newAPITable()
	m := newBrokerMetrics(&Broker{apis: apis})
	for _, a := range apis {
		api := kmsg.NameForKey(a.key)
		for v := a.min; v <= a.max; v++ {
			resp := kmsg.ResponseForKey(a.key)
			fillErrorCodes(reflect.ValueOf(resp), kerr.InvalidRequest.Code)
			resp.SetVersion(v)
			before := errorCountsOf(t, m.errors)[api+"/INVALID_REQUEST"]
			countResponse(m, resp)
			if after := errorCountsOf(t, m.errors)[api+"/INVALID_REQUEST"]; after <= before {
				t.Errorf("%s v%d: no error code counted", api, v)
			}
		}
	}
	for series := range errorCountsOf(t, m.errors) {
		if !strings.HasSuffix(series, "/INVALID_REQUEST") {
			t.Errorf("counted %s, only INVALID_REQUEST was set", series)
		}
	}
}

// errorCodeFields returns every ErrorCode field under v, settable.
func errorCodeFields(v reflect.Value) []reflect.Value {
	var out []reflect.Value
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			out = errorCodeFields(v.Elem())
		}
	case reflect.Slice:
		for i := range v.Len() {
			out = append(out, errorCodeFields(v.Index(i))...)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			switch {
			case !f.IsExported():
			case f.Name == "ErrorCode" && f.Type.Kind() == reflect.Int16:
				out = append(out, v.Field(i))
			default:
				out = append(out, errorCodeFields(v.Field(i))...)
			}
		}
	}
	return out
}

// TestMayHaveErrorsSeesEveryCode sets each error code of each API's
// response alone, in a response with an entry in every list, and checks
// that the look for errors sees it — the hand-written ones included —
// and that Produce and Fetch, counted by hand, count it.
func TestMayHaveErrorsSeesEveryCode(t *testing.T) {
	apis := newAPITable()
	m := newBrokerMetrics(&Broker{apis: apis})
	for _, a := range apis {
		api := kmsg.NameForKey(a.key)
		resp := kmsg.ResponseForKey(a.key)
		fillErrorCodes(reflect.ValueOf(resp), 0)
		resp.SetVersion(a.max)
		fields := errorCodeFields(reflect.ValueOf(resp))
		if len(fields) == 0 {
			t.Errorf("%s: no error code in its response", api)
		}
		paths := m.errors.paths[a.key]
		if paths != nil && paths.mayHaveErrors(resp) {
			t.Errorf("%s: errors seen in a response without any", api)
		}
		for i, f := range fields {
			f.SetInt(int64(kerr.InvalidRequest.Code))
			switch {
			case paths != nil:
				if !paths.mayHaveErrors(resp) {
					t.Errorf("%s: error code %d of %d not seen", api, i+1, len(fields))
				}
			case a.key == int16(kmsg.Produce) || a.key == int16(kmsg.Fetch):
				before := errorCountsOf(t, m.errors)[api+"/INVALID_REQUEST"]
				countResponse(m, resp)
				if after := errorCountsOf(t, m.errors)[api+"/INVALID_REQUEST"]; after != before+1 {
					t.Errorf("%s v%d: error code %d of %d counted %g times, want 1", api, a.max, i+1, len(fields), after-before)
				}
			default:
				t.Errorf("%s: its errors are not looked for", api)
			}
			f.SetInt(0)
		}
	}
}

// BenchmarkResponseErrors times what counting costs a response without
// errors, beside what encoding it costs: a Metadata response of 1000
// partitions (walked by reflection) and a Produce response of 16.
func BenchmarkResponseErrors(b *testing.B) {
	m := newBrokerMetrics(&Broker{apis: newAPITable()})
	metadata := kmsg.NewPtrMetadataResponse()
	metadata.SetVersion(12)
	for i := range 10 {
		st := kmsg.NewMetadataResponseTopic()
		st.Topic = kmsg.StringPtr(fmt.Sprint("topic-", i))
		for p := range 100 {
			sp := kmsg.NewMetadataResponseTopicPartition()
			sp.Partition, sp.Replicas, sp.ISR = int32(p), []int32{1}, []int32{1}
			st.Partitions = append(st.Partitions, sp)
		}
		metadata.Topics = append(metadata.Topics, st)
	}
	produce := kmsg.NewPtrProduceResponse()
	produce.SetVersion(11)
	st := kmsg.NewProduceResponseTopic()
	for p := range 16 {
		sp := kmsg.NewProduceResponseTopicPartition()
		sp.Partition = int32(p)
		st.Partitions = append(st.Partitions, sp)
	}
	produce.Topics = append(produce.Topics, st)
	for _, resp := range []kmsg.Response{metadata, produce} {
		req := &request{key: resp.Key(), version: resp.GetVersion(), correlationID: 1}
		out := outFrame{buf: encodeResponse(req, resp)}
		name := kmsg.NameForKey(resp.Key())
		b.Run(name+"/count", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.responseErrors(req, resp, &out)
			}
		})
		b.Run(name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 2*len(out.buf))
			for b.Loop() {
				buf = encodeResponseInto(buf, req, resp)
			}
		})
	}
}
