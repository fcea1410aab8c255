package evidence

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// writePacket puts files into the directory out. The packet is written to a
// temporary directory beside out, synced, and renamed into place, so out
// either does not exist or holds a complete packet, whatever fails when.
// An out that already holds exactly these files is left alone (reused);
// one that holds anything else is refused with ErrOutputTaken.
func writePacket(out string, files map[string][]byte) (reused bool, err error) {
	out = filepath.Clean(out)
	if same, err := checkOut(out, files); err != nil || same {
		return same, err
	}
	parent := filepath.Dir(out)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return false, fmt.Errorf("evidence: cannot create %s: %w", parent, unwrapPath(err))
	}
	// MkdirTemp makes the directory 0700: a packet holds what
	// administrators typed, and is for the auditor it is handed to.
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return false, fmt.Errorf("evidence: cannot write beside %s: %w", out, unwrapPath(err))
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	for name, data := range files {
		if err := writeSynced(filepath.Join(tmp, name), data); err != nil {
			return false, fmt.Errorf("evidence: write %s: %w", name, unwrapPath(err))
		}
	}
	if err := syncDir(tmp); err != nil {
		return false, fmt.Errorf("evidence: sync %s: %w", tmp, err)
	}
	if err := putInPlace(tmp, out); err != nil {
		same, cerr := checkOut(out, files)
		if cerr != nil {
			return false, cerr
		}
		if same { // another build put this very packet there meanwhile
			os.RemoveAll(tmp)
			return true, nil
		}
		return false, fmt.Errorf("evidence: move the packet into %s: %w", out, unwrapPath(err))
	}
	if err := syncDir(parent); err != nil {
		return false, fmt.Errorf("evidence: sync %s: %w", parent, err)
	}
	return false, nil
}

// putInPlace renames tmp to out. An empty out is removed first, since
// os.Rename will not replace a directory. Remove refuses a directory that
// is no longer empty and Rename one that reappeared, so a packet written
// meanwhile by someone else is never clobbered.
func putInPlace(tmp, out string) error {
	if err := os.Remove(out); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Rename(tmp, out)
}

// checkOut inspects an existing out: same reports that it holds exactly
// files; a missing or empty directory gives (false, nil).
func checkOut(out string, files map[string][]byte) (same bool, err error) {
	st, err := os.Lstat(out)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("evidence: %w", err)
	}
	if !st.IsDir() {
		// A symlink is refused too: following it would write the packet
		// wherever the link points.
		return false, fmt.Errorf("%w: %s exists and is not a directory", ErrOutputTaken, out)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return false, fmt.Errorf("evidence: %w", err)
	}
	if len(entries) == 0 {
		return false, nil
	}
	if _, err := os.Lstat(filepath.Join(out, ManifestName)); err != nil {
		return false, fmt.Errorf("%w: %s is not empty and holds no evidence packet", ErrOutputTaken, out)
	}
	if len(entries) == len(files) {
		same = true
		for _, e := range entries {
			want, ok := files[e.Name()]
			if !ok || !e.Type().IsRegular() {
				same = false
				break
			}
			got, err := os.ReadFile(filepath.Join(out, e.Name()))
			if err != nil || !bytes.Equal(got, want) {
				same = false
				break
			}
		}
	}
	if !same {
		return false, fmt.Errorf("%w: %s already holds a different evidence packet; remove it or choose another --out", ErrOutputTaken, out)
	}
	return true, nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// unwrapPath drops the *PathError wrapper, whose path the message already
// names, so the error reads "permission denied" rather than repeating it.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
