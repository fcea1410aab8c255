package recorder

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// fdDirect toggles O_DIRECT on a file's descriptor with fcntl(F_SETFL),
// which Linux allows on an open file, so one descriptor serves both kinds
// of write.
type fdDirect struct {
	rc syscall.RawConn
	on bool // O_DIRECT is set now
}

func newDirect(f *os.File) direct {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	return &fdDirect{rc: rc}
}

// set sets or clears O_DIRECT; false if the file refuses it.
func (d *fdDirect) set(on bool) bool {
	if d.on == on {
		return true
	}
	var err error
	if cerr := d.rc.Control(func(fd uintptr) {
		var fl int
		if fl, err = unix.FcntlInt(fd, unix.F_GETFL, 0); err != nil {
			return
		}
		if on {
			fl |= unix.O_DIRECT
		} else {
			fl &^= unix.O_DIRECT
		}
		_, err = unix.FcntlInt(fd, unix.F_SETFL, fl)
	}); cerr != nil {
		err = cerr
	}
	if err != nil {
		return false
	}
	d.on = on
	return true
}

func (d *fdDirect) buffered() bool { return d.set(false) }

func (d *fdDirect) write(p []byte, off int64) (int, bool) {
	if !d.set(true) {
		return 0, false
	}
	var n int
	var err error
	if cerr := d.rc.Control(func(fd uintptr) {
		for {
			n, err = unix.Pwrite(int(fd), p, off)
			if !errors.Is(err, unix.EINTR) {
				return
			}
		}
	}); cerr != nil {
		return 0, false
	}
	if err != nil || n < 0 {
		return 0, false
	}
	// A short write (a disk filling up) leaves the rest to the page
	// cache, which reports the error as it would have.
	return n, n == len(p)
}
