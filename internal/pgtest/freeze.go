package pgtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Freeze stops the server's processes (the postmaster and every backend)
// with SIGSTOP and leaves them stopped until Thaw: a database that hangs,
// as one on a stuck disk or in a swap storm does, while its sockets stay
// open and the kernel still acknowledges what clients send. Unlike Halt,
// no client sees an error: only its own deadlines end its waits. Like
// Halt, it is for a server of a test's own (Own), never a Shared one.
// Stop thaws a frozen server first.
func (s *Server) Freeze() error {
	s.frozen.Store(true)
	return s.signalAll(syscall.SIGSTOP)
}

// Thaw resumes a frozen server.
func (s *Server) Thaw() error {
	err := s.signalAll(syscall.SIGCONT)
	if err == nil {
		s.frozen.Store(false)
	}
	return err
}

// signalAll sends sig to the postmaster named in the data directory's
// postmaster.pid and to its children, the backends (a process that forks
// meanwhile is caught the next time: the postmaster is stopped first).
func (s *Server) signalAll(sig syscall.Signal) error {
	b, err := os.ReadFile(filepath.Join(s.dir, "data", "postmaster.pid"))
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pm, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pm <= 1 {
		return fmt.Errorf("pgtest: postmaster.pid: %q", first)
	}
	if err := syscall.Kill(pm, sig); err != nil {
		return fmt.Errorf("pgtest: signal postmaster %d: %w", pm, err)
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", p.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses,
		// so the fields are counted from the last ')'.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil && ppid == pm {
			_ = syscall.Kill(pid, sig) // a backend that just exited is not an error
		}
	}
	return nil
}
