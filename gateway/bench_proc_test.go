package gateway_test

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// CPU accounting for the benchmarks, from the kernel's own counters: the
// gateway is this test process (getrusage, every thread, not its ssh
// children), and the sshd that serves a session is found under the
// listening sshd's pid in /proc.

// selfCPU is the CPU time this process has used, user and system.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTick is the unit of utime and stime in /proc/PID/stat: USER_HZ,
// which Linux fixes at 100 for user space.
const clockTick = 10 * time.Millisecond

// procStat returns the command name and utime+stime of pid, from
// /proc/PID/stat.
func procStat(pid int) (comm string, cpu time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, false
	}
	s := string(b)
	// comm is in parentheses and may hold spaces; the fields after the
	// last ')' are space-separated: state is field 3, utime 14, stime 15.
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 13 {
		return "", 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, false
	}
	return s[open+1 : end], time.Duration(ut+st) * clockTick, true
}

// descendants returns every process below pid (children of each thread,
// recursively).
func descendants(pid int) []int {
	var out []int
	var walk func(int)
	walk = func(p int) {
		tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(p) + "/task")
		for _, t := range tasks {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/task/" + t.Name() + "/children")
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
					walk(c)
				}
			}
		}
	}
	walk(pid)
	return out
}

// sshdMeter adds up the CPU time of the sshd processes that appear under
// a listening sshd while it runs: the per-connection monitor and the
// process that encrypts the session. It samples every few tens of
// milliseconds, and keeps the last value seen of each, so a process must
// outlive its busy part by a sample or two: the benchmark's command ends
// with a short sleep for that.
type sshdMeter struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	seen map[int]time.Duration
}

func startSSHDMeter(listener int) *sshdMeter {
	m := &sshdMeter{stop: make(chan struct{}), done: make(chan struct{}), seen: map[int]time.Duration{}}
	before := map[int]bool{}
	for _, p := range descendants(listener) {
		before[p] = true // sessions from earlier runs, still closing
	}
	go func() {
		defer close(m.done)
		t := time.NewTicker(25 * time.Millisecond)
		defer t.Stop()
		for {
			for _, p := range descendants(listener) {
				if before[p] {
					continue
				}
				if comm, cpu, ok := procStat(p); ok && comm == "sshd" {
					m.mu.Lock()
					m.seen[p] = max(m.seen[p], cpu)
					m.mu.Unlock()
				}
			}
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// Stop ends the sampling and returns the CPU time of the sshd processes
// seen.
func (m *sshdMeter) Stop() time.Duration {
	close(m.stop)
	<-m.done
	var sum time.Duration
	for _, c := range m.seen {
		sum += c
	}
	return sum
}
