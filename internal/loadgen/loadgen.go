package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Options says where the sessions go and how many.
type Options struct {
	// Addr is the SSH server, "host:port".
	Addr string
	// User is the SSH user name, e.g. "root@web01" through Warden.
	User string
	// Signers are the client keys; session i authenticates with
	// Signers[i%len(Signers)], so a gateway's per-user limits can be met
	// by giving more keys. At least one.
	Signers []ssh.Signer
	// HostKey is the server's host key, checked byte for byte. Required:
	// a load generator that trusts any key would measure whatever answers.
	HostKey ssh.PublicKey
	// Sessions is how many sessions to open.
	Sessions int
	// Concurrency is how many sessions are being set up at once; 8 if not
	// positive. Servers bound unauthenticated connections per source
	// (OpenSSH's MaxStartups, Warden's max_startups_per_source, both 10
	// by default), so more would measure refusals.
	Concurrency int
	// Timeout bounds the setup of one session (connect, authenticate,
	// pty, shell and the first line's round trip); 60s if not positive.
	Timeout time.Duration
	// Term, Cols and Rows describe the terminal; xterm, 80x24 if unset.
	Term       string
	Cols, Rows int
}

// Crowd is the sessions Open set up.
type Crowd struct {
	// Sessions are the sessions that were set up, in no particular order.
	Sessions []*Session
	// Failed holds why each of the others was not.
	Failed []error
	// Elapsed is the wall time Open took to set them all up.
	Elapsed time.Duration
}

// Rate is the setup rate: sessions set up per second of Open.
func (c *Crowd) Rate() float64 {
	if c.Elapsed <= 0 {
		return 0
	}
	return float64(len(c.Sessions)) / c.Elapsed.Seconds()
}

// Open sets up opt.Sessions sessions, at most opt.Concurrency at a time,
// and returns them with the failures. Its error is for unusable options
// only; sessions that fail are in Crowd.Failed. A ctx that ends stops the
// setups still waiting to start.
func Open(ctx context.Context, opt Options) (*Crowd, error) {
	if err := opt.defaults(); err != nil {
		return nil, err
	}
	crowd := &Crowd{}
	var mu sync.Mutex
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range opt.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				s, err := dial(ctx, opt, i)
				mu.Lock()
				if err != nil {
					crowd.Failed = append(crowd.Failed, fmt.Errorf("session %d: %w", i, err))
				} else {
					crowd.Sessions = append(crowd.Sessions, s)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range opt.Sessions {
		select {
		case next <- i:
		case <-ctx.Done():
			mu.Lock()
			for ; i < opt.Sessions; i++ {
				crowd.Failed = append(crowd.Failed, fmt.Errorf("session %d: %w", i, ctx.Err()))
			}
			mu.Unlock()
			break feed
		}
	}
	close(next)
	wg.Wait()
	crowd.Elapsed = time.Since(start)
	return crowd, nil
}

func (opt *Options) defaults() error {
	switch {
	case opt.Addr == "" || opt.User == "":
		return errors.New("loadgen: Addr and User are required")
	case len(opt.Signers) == 0:
		return errors.New("loadgen: no client keys")
	case opt.HostKey == nil:
		return errors.New("loadgen: no host key to check the server against")
	case opt.Sessions < 0:
		return errors.New("loadgen: negative number of sessions")
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = 8
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 60 * time.Second
	}
	if opt.Term == "" {
		opt.Term = "xterm"
	}
	if opt.Cols <= 0 || opt.Rows <= 0 {
		opt.Cols, opt.Rows = 80, 24
	}
	return nil
}

// Close ends every session: it types exit into each, at most
// concurrency at a time (8 if not positive), and waits until each one's
// connection has closed. A session that has not ended when ctx does is
// cut off. It returns the sessions that did not end by themselves.
func (c *Crowd) Close(ctx context.Context, concurrency int) []error {
	if concurrency <= 0 {
		concurrency = 8
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, concurrency)
	)
	for _, s := range c.Sessions {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := s.Close(ctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("session %d: %w", s.ID, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

// Each runs fn on every session, at most concurrency at a time, and
// returns the errors.
func (c *Crowd) Each(concurrency int, fn func(*Session) error) []error {
	if concurrency <= 0 {
		concurrency = 8
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, concurrency)
	)
	for _, s := range c.Sessions {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(s); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("session %d: %w", s.ID, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

// dial sets up session i: connection, authentication, pty, shell, and one
// line's round trip.
func dial(ctx context.Context, opt Options, i int) (*Session, error) {
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", opt.Addr)
	if err != nil {
		return nil, err
	}
	// The handshake has no context; a deadline on the socket bounds it.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	want := opt.HostKey.Marshal()
	cfg := &ssh.ClientConfig{
		User: opt.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(opt.Signers[i%len(opt.Signers)])},
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if string(key.Marshal()) != string(want) {
				return errors.New("loadgen: host key mismatch")
			}
			return nil
		},
		HostKeyAlgorithms: []string{opt.HostKey.Type()},
		ClientVersion:     "SSH-2.0-WardenLoad",
	}
	cc, chans, reqs, err := ssh.NewClientConn(nc, opt.Addr, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	s := &Session{ID: i, client: ssh.NewClient(cc, chans, reqs), out: newTail()}
	if err := s.start(ctx, opt); err != nil {
		s.client.Close()
		return nil, err
	}
	if !stop() {
		s.client.Close()
		return nil, ctx.Err()
	}
	_ = nc.SetDeadline(time.Time{})
	return s, nil
}
