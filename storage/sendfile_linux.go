package storage

import (
	"errors"
	"io"
	"syscall"

	"github.com/samsa-io/samsa/internal/vfs"
)

// maxSendfile bounds one sendfile(2) call.
const maxSendfile = 1 << 30

// sendSection writes sec to w with sendfile(2) when w is a socket (or any
// syscall.Conn) and the segment an *os.File, and reports whether it did
// (handled); when not, nothing was written and the caller copies.
//
// It does not use (*net.TCPConn).ReadFrom: Go's sendfile for an *os.File
// source sends from the file's current offset and moves it, and a
// segment's one handle is shared by every reader (and, with O_APPEND, the
// appender). sendfile(2) with an explicit offset leaves the handle's offset
// alone, so concurrent sections of one segment do not disturb each other.
func sendSection(w io.Writer, sec *Section) (int64, bool, error) {
	sc, ok := w.(syscall.Conn)
	if !ok {
		return 0, false, nil
	}
	of, ok := sec.seg.log.(vfs.OSFiler)
	if !ok {
		return 0, false, nil
	}
	dst, err := sc.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	src, err := of.OSFile().SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	// What the callback shares with this function, in one allocation (the
	// callback escapes, as dst.Write's argument, and so would each
	// variable it writes).
	st := &struct {
		written int64
		err     error
	}{}
	err = dst.Write(func(dfd uintptr) bool {
		for st.written < sec.n {
			var n int
			var errno error
			st.err = sec.seg.guard(sec.gen, func() error {
				return src.Control(func(sfd uintptr) {
					off := sec.pos + st.written
					n, errno = syscall.Sendfile(int(dfd), int(sfd), &off, int(min(sec.n-st.written, maxSendfile)))
				})
			})
			if n > 0 {
				st.written += int64(n)
			}
			switch {
			case st.err != nil:
				return true
			case errors.Is(errno, syscall.EAGAIN):
				return false // wait until the socket can take more
			case errors.Is(errno, syscall.EINTR):
			case errno != nil:
				st.err = errno
				return true
			case n == 0:
				st.err = io.ErrUnexpectedEOF // the file is shorter than the section
				return true
			}
		}
		return true
	})
	if err == nil {
		err = st.err
	}
	written := st.written
	if written == 0 && (errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EOPNOTSUPP)) {
		return 0, false, nil // sendfile(2) cannot do this pair: copy
	}
	return written, true, err
}
