package memlimit

import (
	"os"
	"runtime/debug"
	"testing"
	"testing/fstest"
)

func TestCgroupLimit(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, tc := range []struct {
		name   string
		root   fstest.MapFS
		self   string
		want   int64
		source string
	}{
		{
			name: "v2 limit on the process's cgroup",
			root: fstest.MapFS{"memory.max": file("max\n"), "kubepods/pod1/memory.max": file("2147483648\n")},
			self: "0::/kubepods/pod1\n",
			want: 2 << 30, source: "/sys/fs/cgroup/kubepods/pod1/memory.max",
		},
		{
			name: "v2 parent tighter than the child",
			root: fstest.MapFS{"a/memory.max": file("1073741824"), "a/b/memory.max": file("max")},
			self: "0::/a/b\n",
			want: 1 << 30, source: "/sys/fs/cgroup/a/memory.max",
		},
		{
			name: "v2 namespaced: only the root file is visible",
			root: fstest.MapFS{"memory.max": file("536870912\n")},
			self: "0::/docker/abc\n",
			want: 512 << 20, source: "/sys/fs/cgroup/memory.max",
		},
		{
			name: "v2 no limit anywhere",
			root: fstest.MapFS{"memory.max": file("max\n"), "a/memory.max": file("max\n")},
			self: "0::/a\n",
		},
		{
			name: "v1 memory controller (this machine's layout, with no limit)",
			root: fstest.MapFS{
				"memory/memory.limit_in_bytes":               file("9223372036854771712\n"),
				"memory/process_api/x/memory.limit_in_bytes": file("9223372036854771712\n"),
			},
			self: "9:name=systemd:/\n4:memory:/process_api/x\n1:cpu:/\n0::/\n",
		},
		{
			name: "v1 limit",
			root: fstest.MapFS{
				"memory/memory.limit_in_bytes":               file("9223372036854771712\n"),
				"memory/process_api/x/memory.limit_in_bytes": file("4294967296\n"),
			},
			self: "6:cpu,cpuacct:/\n4:memory:/process_api/x\n0::/\n",
			want: 4 << 30, source: "/sys/fs/cgroup/memory/process_api/x/memory.limit_in_bytes",
		},
		{
			name: "v1 controller listed with others",
			root: fstest.MapFS{"memory/m/memory.limit_in_bytes": file("1048576\n")},
			self: "3:memory,hugetlb:/m\n",
			want: 1 << 20, source: "/sys/fs/cgroup/memory/m/memory.limit_in_bytes",
		},
		{
			name: "garbage is no limit",
			root: fstest.MapFS{"memory.max": file("lots\n"), "a/memory.max": file("-5\n")},
			self: "0::/a\nnot a line\n",
		},
		{
			name: "no cgroup file",
			root: fstest.MapFS{},
			self: "",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, src := CgroupLimit(tc.root, []byte(tc.self))
			if got != tc.want || src != tc.source {
				t.Errorf("CgroupLimit = %d from %q, want %d from %q", got, src, tc.want, tc.source)
			}
		})
	}
}

// With GOMEMLIMIT set, Set leaves the runtime's limit alone.
func TestSetLeavesGOMEMLIMITAlone(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "1GiB")
	before := debug.SetMemoryLimit(-1)
	if got := Set(DefaultRatio); got.Bytes != 0 || got.Source != "GOMEMLIMIT" {
		t.Errorf("Set with GOMEMLIMIT = %+v", got)
	}
	if after := debug.SetMemoryLimit(-1); after != before {
		t.Errorf("runtime limit changed from %d to %d", before, after)
	}
}

// On this machine, Set applies whatever the real cgroup files say.
func TestSetFollowsTheRealCgroup(t *testing.T) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Skip("no /proc/self/cgroup on this system")
	}
	lim, _ := CgroupLimit(os.DirFS("/sys/fs/cgroup"), self)
	before := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(before)
	t.Setenv("GOMEMLIMIT", "")
	got := Set(0.5)
	if got.Cgroup != lim || (lim > 0 && got.Bytes != lim/2) || (lim == 0 && got.Bytes != 0) {
		t.Errorf("Set(0.5) = %+v with the cgroup's limit %d", got, lim)
	}
	if lim > 0 && debug.SetMemoryLimit(-1) != lim/2 {
		t.Errorf("runtime limit %d, want %d", debug.SetMemoryLimit(-1), lim/2)
	}
}
