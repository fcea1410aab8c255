package gateway

// FlushPreAuth writes every open window of the pre-authentication report
// now, as shutdown does, so that end-to-end tests need not wait a minute.
func FlushPreAuth(s *Server) { s.flushPreAuth(true) }

// FlushRefusals writes every open window of the refusal report now.
func FlushRefusals(s *Server) { s.flushRefusals(true) }

// SetMaxConnsPerUser lowers the per-user connection bound for a test.
func SetMaxConnsPerUser(s *Server, n int) {
	s.users.mu.Lock()
	s.users.max = n
	s.users.mu.Unlock()
}

// PreAuthHeld returns the number of pre-authentication slots held.
func PreAuthHeld(s *Server) int {
	_, n := s.gate.held()
	return n
}
