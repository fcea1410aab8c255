package audit

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchSessions is the size the console's session list must stay fast at
// (README, "Benchmarks").
const benchSessions = 100_000

// seedSearch fills s with n sessions over a year: 20 tenants, 500 hosts,
// 200 users, 30 roles, mostly "exit" (and a tiny tenant of 100 sessions); five commands each; and the screen
// text of every fifth session in the output index. About one session in a
// hundred ran and showed DROP TABLE. Everything is one writer transaction
// with prepared statements.
func seedSearch(tb testing.TB, s *Store, n int) {
	tb.Helper()
	rng := rand.New(rand.NewSource(1))
	words := strings.Fields("ls cd cat grep tail less vim systemctl status restart journalctl df du top ps kill " +
		"apt install update nginx postgres psql select from where users orders deploy release backup rsync")
	reasons := []string{"exit", "exit", "exit", "exit", "exit", "exit", "exit", "killed", "grant expired", "interrupted"}
	err := s.write(context.Background(), func(tx *sql.Tx, _ *chainTip) error {
		insS, err := tx.Prepare(`INSERT INTO sessions (id, user, login, host, tenant, role, started_at, ended_at, end_reason, recording_path)
			VALUES (?, ?, 'root', ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		insC, err := tx.Prepare(`INSERT INTO commands (session_id, ts, user, login, host, tenant, source, command, action, offset)
			VALUES (?, ?, ?, 'root', ?, ?, 'shell', ?, 'allowed', ?)`)
		if err != nil {
			return err
		}
		insK, err := tx.Prepare(`INSERT INTO session_output_chunks (session_id) VALUES (?) RETURNING docid`)
		if err != nil {
			return err
		}
		insF, err := tx.Prepare(`INSERT INTO session_output_fts (docid, text) VALUES (?, ?)`)
		if err != nil {
			return err
		}
		insI, err := tx.Prepare(`INSERT INTO session_output_index (session_id, indexed_at, bytes, truncated) VALUES (?, ?, ?, 0)`)
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("bench-%07d", i)
			tenant := fmt.Sprintf("t%02d", i%20)
			if i%1000 == 999 {
				tenant = "tiny" // a customer with 100 sessions in all
			}
			host := fmt.Sprintf("h%03d", rng.Intn(500))
			user := fmt.Sprintf("u%03d", rng.Intn(200))
			role := fmt.Sprintf("r%02d", rng.Intn(30))
			start := t0.Add(-365 * 24 * time.Hour).Add(time.Duration(i) * (365 * 24 * time.Hour / time.Duration(n)))
			started, _ := formatTime(start)
			ended, _ := formatTime(start.Add(10 * time.Minute))
			drop := rng.Intn(100) == 0
			if _, err := insS.Exec(id, user, host, tenant, role, started, ended, reasons[rng.Intn(len(reasons))],
				"recordings/x/"+id+".cast"); err != nil {
				return err
			}
			var screen strings.Builder
			for c := 0; c < 5; c++ {
				cmd := words[rng.Intn(len(words))] + " " + words[rng.Intn(len(words))] + " /var/" + words[rng.Intn(len(words))]
				if drop && c == 2 {
					cmd = "psql -c 'DROP TABLE customers'"
				}
				screen.WriteString("root@" + host + ":~# " + cmd + "\n")
				for k := 0; k < 20; k++ {
					screen.WriteString(words[rng.Intn(len(words))] + " ")
				}
				screen.WriteString("\n")
				if _, err := insC.Exec(id, started, user, host, tenant, cmd, float64(c)*12.5); err != nil {
					return err
				}
			}
			if i%5 != 0 && !drop {
				continue
			}
			var docid int64
			if err := insK.QueryRow(id).Scan(&docid); err != nil {
				return err
			}
			if _, err := insF.Exec(docid, s.d.outputText(screen.String())); err != nil {
				return err
			}
			if _, err := insI.Exec(id, ended, screen.Len()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkSearchSessions times one page (50 rows) of the session list at
// 100,000 sessions, first and deep, under each filter.
func BenchmarkSearchSessions(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(context.Background(), dir, Options{Now: (&clock{}).Now})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	seedSearch(b, s, benchSessions)
	b.Logf("seeded %d sessions, %d commands in %v", benchSessions, 5*benchSessions, time.Since(start).Round(time.Millisecond))
	ctx := context.Background()

	// The cursor of the row half-way down the unfiltered list.
	var deepStarted, deepID string
	if err := s.db.QueryRow(`SELECT started_at, id FROM sessions ORDER BY started_at DESC, id DESC LIMIT 1 OFFSET ?`,
		benchSessions/2).Scan(&deepStarted, &deepID); err != nil {
		b.Fatal(err)
	}
	deepT, _ := parseTime(deepStarted)
	deep := encodeCursor(deepT, deepID)
	var live []string
	for i := 0; i < 200; i++ {
		live = append(live, fmt.Sprintf("bench-%07d", benchSessions-1-i*7))
	}
	month := t0.Add(-180 * 24 * time.Hour)
	var fifteen []string
	for i := 0; i < 15; i++ {
		fifteen = append(fifteen, fmt.Sprintf("t%02d", i))
	}
	for _, bc := range []struct {
		name string
		q    SessionQuery
	}{
		{"first-page", SessionQuery{}},
		{"deep-page", SessionQuery{After: deep}},
		{"user", SessionQuery{User: "u042"}},
		{"user-deep", SessionQuery{User: "u042", After: deep}},
		{"host", SessionQuery{Host: "h123"}},
		{"tenant-host", SessionQuery{Host: "t03/h123"}},
		{"tenant", SessionQuery{Tenant: "t07"}},
		{"role", SessionQuery{Role: "r11"}},
		{"end-reason-rare", SessionQuery{EndReason: "interrupted"}},
		{"date-range", SessionQuery{Since: month, Until: month.Add(30 * 24 * time.Hour)}},
		{"live-ids", SessionQuery{IDs: live}},
		{"scope-3-tenants", SessionQuery{Tenants: []string{"t01", "t02", "t03"}}},
		{"scope-3-tenants-deep", SessionQuery{Tenants: []string{"t01", "t02", "t03"}, After: deep}},
		{"scope-15-tenants", SessionQuery{Tenants: fifteen}},
		{"scope-15-tenants-deep", SessionQuery{Tenants: fifteen, After: deep}},
		{"scope-tiny-tenant", SessionQuery{Tenants: []string{"tiny"}}},
		{"scope-and-user", SessionQuery{Tenants: []string{"t01", "t02", "t03"}, User: "u042"}},
		{"command-common", SessionQuery{CommandContains: "nginx"}},
		{"command-rare", SessionQuery{CommandContains: "drop table"}},
		{"command-none", SessionQuery{CommandContains: "no such command"}},
		{"command-rare-scoped", SessionQuery{CommandContains: "drop table", Tenants: []string{"t01"}}},
		{"output-common", SessionQuery{OutputContains: "nginx"}},
		{"output-rare", SessionQuery{OutputContains: "DROP TABLE customers"}},
		{"output-none", SessionQuery{OutputContains: "no such words"}},
		{"output-rare-scoped", SessionQuery{OutputContains: "DROP TABLE", Tenants: []string{"t01"}}},
		{"user-and-command", SessionQuery{User: "u042", CommandContains: "nginx"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cpu := cpuTime()
			for i := 0; i < b.N; i++ {
				if _, err := s.SearchSessions(ctx, bc.q); err != nil {
					b.Fatal(err)
				}
			}
			// CPU time as well as wall time: on a shared machine the wall
			// time mostly measures the other processes.
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

// BenchmarkExtractText times the indexer's reading of a recording: 8 MiB
// of shell-like output with colours, in 4 KiB events.
func BenchmarkExtractText(b *testing.B) {
	var chunks []string
	var line strings.Builder
	for total := 0; total < 8<<20; {
		line.Reset()
		line.WriteString("\x1b[1;32mroot@web01\x1b[0m:~# ")
		for line.Len() < 4096 {
			line.WriteString("drwxr-xr-x 2 root root 4096 Nov 29 08:00 \x1b[01;34mdirectory\x1b[0m\r\n")
		}
		chunks = append(chunks, line.String())
		total += line.Len()
	}
	text := cast(chunks...)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, _, err := ExtractText(strings.NewReader(text), MaxOutputText); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(text))*float64(b.N)/(1<<20)/(cpuTime()-cpu).Seconds(), "MiB/cpu-s")
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
