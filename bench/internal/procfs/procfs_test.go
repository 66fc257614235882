package procfs

import (
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	stat := []byte("1234 (samsa serve) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0 100 0 0")
	got, err := ParseStatCPU(stat)
	if err != nil || got != 3250*time.Millisecond {
		t.Errorf("ParseStatCPU = %v, %v; want 3.25s", got, err)
	}
	if _, err := ParseStatCPU([]byte("garbage")); err == nil {
		t.Error("ParseStatCPU accepted garbage")
	}
}
