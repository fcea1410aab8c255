package recorder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// Repair is what RepairTail did to a recording.
type Repair struct {
	// TruncatedBytes is how many bytes after the last complete line were
	// cut off; zero when the file already ended with a whole line.
	TruncatedBytes int64
	// SHA256Before is the hex SHA-256 of the file as found, before the
	// cut; empty when nothing was cut.
	SHA256Before string
}

// RepairTail makes a recording that a crash interrupted valid asciicast
// again: every event is one line ending in '\n', and the writer flushes
// buffers that may end inside an event, so a gateway killed mid-flush
// leaves a last line without its newline, which is not JSON and makes
// players reject the whole file. RepairTail cuts the file after its last
// newline and syncs it. Everything before that point is whole events that
// were already on disk, and is kept byte for byte.
//
// It is for recordings of sessions that a crash left open, before they are
// hashed and sealed (audit.Store.CloseOrphans): the digest sealed is then
// the one of the repaired file, and the Repair (bytes cut, digest as found)
// goes into the same event, so the cut is on the record. A file with no
// newline at all (not even a whole header) is left as it is. The path is
// opened like OpenRecording: only inside dataDir, never through a link.
func RepairTail(dataDir, rel string) (Repair, error) {
	f, err := openRecording(dataDir, rel, os.O_RDWR)
	if err != nil {
		return Repair{}, err
	}
	defer f.Close()
	return cutTorn(f, rel)
}

// cutTorn cuts f after its last newline; see RepairTail.
func cutTorn(f *os.File, rel string) (Repair, error) {
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var size, lastNL int64 = 0, -1
	for {
		n, err := f.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
				lastNL = size + int64(i)
			}
			size += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return Repair{}, fmt.Errorf("recorder: repair %s: %w", rel, err)
		}
	}
	if lastNL < 0 || lastNL+1 == size {
		return Repair{}, nil
	}
	r := Repair{TruncatedBytes: size - (lastNL + 1), SHA256Before: hex.EncodeToString(h.Sum(nil))}
	if err := f.Truncate(lastNL + 1); err != nil {
		return Repair{}, fmt.Errorf("recorder: repair %s: %w", rel, err)
	}
	if err := f.Sync(); err != nil {
		return Repair{}, fmt.Errorf("recorder: repair %s: %w", rel, err)
	}
	return r, nil
}

// cutFailed cuts a recording whose writer met a write error (a full disk)
// back to its last whole line, so what was written before the failure
// stays valid asciicast. Best effort: the session already ends or goes on
// by recording.on_failure, and its row carries no digest for this file.
func cutFailed(path string) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = cutTorn(f, path)
}
