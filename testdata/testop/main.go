// Command testop is a real OpenID Provider for Warden's single sign-on
// tests: zitadel/oidc's op package with its example in-memory storage and
// login form, serving one confidential web client on a loopback port.
//
//	testop -users users.json -client-id warden -client-secret S -redirect http://127.0.0.1:8022/oidc/callback
//	{"issuer":"http://127.0.0.1:40123"}
//
// It prints its issuer as one JSON line on stdout once it is serving, and
// runs until killed. users.json is a list of
// {"username": ..., "password": ..., "groups": [...]}; each user's
// preferred_username is its username, and its groups claim (in the ID
// token's userinfo and at the userinfo endpoint) lists its groups.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

type userFile struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	Groups   []string `json:"groups"`
}

// users is the storage.UserStore of the users file, with their groups.
type users struct {
	byID   map[string]*storage.User
	groups map[string][]string // user ID -> groups
}

func (u users) GetUserByID(id string) *storage.User { return u.byID[id] }

func (u users) GetUserByUsername(name string) *storage.User {
	for _, x := range u.byID {
		if x.Username == name {
			return x
		}
	}
	return nil
}

func (u users) ExampleClientID() string { return storage.ServiceUserID }

// withGroups adds the groups claim to what the example storage asserts.
type withGroups struct {
	*storage.Storage
	users users
}

func (s withGroups) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, r op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, r, scopes); err != nil {
		return err
	}
	s.addGroups(ui, r.GetSubject())
	return nil
}

func (s withGroups) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, ui, tokenID, subject, origin); err != nil {
		return err
	}
	s.addGroups(ui, subject)
	return nil
}

func (s withGroups) addGroups(ui *oidc.UserInfo, subject string) {
	if g, ok := s.users.groups[subject]; ok {
		ui.AppendClaims("groups", g)
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	usersPath := flag.String("users", "", "users file (JSON)")
	clientID := flag.String("client-id", "warden", "the relying party's client_id")
	secret := flag.String("client-secret", "", "the relying party's client_secret")
	redirect := flag.String("redirect", "", "comma-separated redirect URIs of the client")
	flag.Parse()
	if err := run(*addr, *usersPath, *clientID, *secret, *redirect); err != nil {
		fmt.Fprintln(os.Stderr, "testop:", err)
		os.Exit(1)
	}
}

func run(addr, usersPath, clientID, secret, redirect string) error {
	raw, err := os.ReadFile(usersPath)
	if err != nil {
		return err
	}
	var list []userFile
	if err := json.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf("users file: %w", err)
	}
	us := users{byID: map[string]*storage.User{}, groups: map[string][]string{}}
	for _, u := range list {
		id := "sub-" + u.Username
		us.byID[id] = &storage.User{ID: id, Username: u.Username, Password: u.Password, FirstName: u.Username,
			Email: u.Username + "@example.test", EmailVerified: true, PreferredLanguage: language.English}
		us.groups[id] = u.Groups
	}
	if secret == "" || redirect == "" {
		return fmt.Errorf("-client-secret and -redirect are required")
	}
	client := storage.WebClient(clientID, secret, strings.Split(redirect, ",")...)
	st := withGroups{Storage: storage.NewStorageWithClients(us, map[string]*storage.Client{clientID: client}), users: us}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	issuer := "http://" + ln.Addr().String()
	router := exampleop.SetupServer(issuer, st, nil, false)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	if err := json.NewEncoder(os.Stdout).Encode(map[string]string{"issuer": issuer}); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}
