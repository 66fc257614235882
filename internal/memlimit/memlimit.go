// Package memlimit gives the Go runtime a soft memory limit below the
// memory limit of the process's cgroup, so that a broker in a container
// collects garbage harder as it nears the limit instead of being killed by
// the kernel. GOMEMLIMIT, when set, wins.
package memlimit

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// DefaultRatio is the share of the cgroup's limit given to the runtime; the
// rest is left for what the runtime does not count (thread stacks outside
// the heap, the page cache charged to the cgroup before it is reclaimed).
const DefaultRatio = 0.9

// unlimited is the smallest value read as "no limit": cgroup v1 reports no
// limit as the largest page-aligned int64.
const unlimited = 1 << 62

// Limit is what Set decided.
type Limit struct {
	Bytes  int64  // the runtime's soft limit; 0 when Set left it alone
	Cgroup int64  // the cgroup's limit it came from; 0 when there is none
	Source string // the file the cgroup's limit was read from, or "GOMEMLIMIT"
}

// Set sets the runtime's soft memory limit to ratio times the memory limit
// of this process's cgroup (the tightest on its path up to the root). It
// does nothing when GOMEMLIMIT is set or no cgroup limits the process.
func Set(ratio float64) Limit {
	if os.Getenv("GOMEMLIMIT") != "" {
		return Limit{Source: "GOMEMLIMIT"}
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return Limit{}
	}
	lim, src := CgroupLimit(os.DirFS("/sys/fs/cgroup"), self)
	if lim == 0 {
		return Limit{}
	}
	bytes := int64(float64(lim) * ratio)
	debug.SetMemoryLimit(bytes)
	return Limit{Bytes: bytes, Cgroup: lim, Source: src}
}

// CgroupLimit returns the memory limit of the cgroup that /proc/self/cgroup
// (self) names, read from the cgroup filesystem root (as mounted at
// /sys/fs/cgroup): cgroup v2's memory.max, or v1's
// memory/memory.limit_in_bytes, the smallest from the process's cgroup up
// to the root. It returns 0 when nothing limits the process.
func CgroupLimit(root fs.FS, self []byte) (limit int64, source string) {
	v1, v2, hasV1, hasV2 := cgroupPaths(self)
	if hasV1 {
		if lim, src := tightest(root, "memory", v1, "memory.limit_in_bytes"); lim > 0 {
			return lim, src
		}
	}
	if hasV2 {
		return tightest(root, ".", v2, "memory.max")
	}
	return 0, ""
}

// cgroupPaths finds the process's v1 memory cgroup and its v2 cgroup in
// /proc/self/cgroup's "id:controllers:path" lines.
func cgroupPaths(self []byte) (v1, v2 string, hasV1, hasV2 bool) {
	sc := bufio.NewScanner(bytes.NewReader(self))
	for sc.Scan() {
		id, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		controllers, p, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		switch {
		case id == "0" && controllers == "":
			v2, hasV2 = p, true
		case containsWord(controllers, "memory"):
			v1, hasV1 = p, true
		}
	}
	return v1, v2, hasV1, hasV2
}

func containsWord(list, word string) bool {
	for w := range strings.SplitSeq(list, ",") {
		if w == word {
			return true
		}
	}
	return false
}

// tightest reads file in mount/cgroupPath and every parent up to the mount,
// and returns the smallest limit found. A container often sees only its own
// cgroup at the mount's root while /proc/self/cgroup names the host's path:
// then the walk finds the file at the root.
func tightest(root fs.FS, mount, cgroupPath, file string) (int64, string) {
	var best int64
	var source string
	for p := path.Clean("/" + cgroupPath); ; p = path.Dir(p) {
		name := path.Join(mount, p, file)
		if lim, ok := readLimit(root, name); ok && (best == 0 || lim < best) {
			best, source = lim, path.Join("/sys/fs/cgroup", name)
		}
		if p == "/" {
			return best, source
		}
	}
}

// readLimit parses a limit file: a number of bytes, or "max" (none).
func readLimit(root fs.FS, name string) (int64, bool) {
	b, err := fs.ReadFile(root, name)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= unlimited {
		return 0, false
	}
	return n, true
}
