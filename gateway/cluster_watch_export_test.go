package gateway

// WatchTiming is the remote view's clocks and bounds (cluster_watch.go).
type WatchTiming = watchTiming

// SetWatchTiming replaces s's remote view timing for a test; zero fields
// keep their defaults. Set it before any view starts.
func SetWatchTiming(s *Server, t WatchTiming) {
	d := defaultWatchTiming()
	if t.Now != nil {
		d.Now = t.Now
	}
	if t.Keep != 0 {
		d.Keep = t.Keep
	}
	if t.Expire != 0 {
		d.Expire = t.Expire
	}
	if t.Tick != 0 {
		d.Tick = t.Tick
	}
	if t.Coalesce != 0 {
		d.Coalesce = t.Coalesce
	}
	if t.Open != 0 {
		d.Open = t.Open
	}
	if t.Budget != 0 {
		d.Budget = t.Budget
	}
	s.watches.timing.Store(d)
}

// RemoteStreams is how many remote views s streams as the holder.
func RemoteStreams(s *Server) int { return s.watches.count() }

// FramesTopic is the topic node receives its remote views' frames on.
func FramesTopic(node string) string { return framesTopic(node) }
