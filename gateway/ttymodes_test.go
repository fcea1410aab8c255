package gateway

import (
	"encoding/binary"
	"testing"
)

func encodeModes(m map[byte]uint32, order []byte) string {
	var b []byte
	for _, op := range order {
		b = append(b, op)
		b = binary.BigEndian.AppendUint32(b, m[op])
	}
	return string(append(b, ttyOpEnd))
}

func decodeModes(t *testing.T, s string) map[byte]uint32 {
	t.Helper()
	out := map[byte]uint32{}
	for i := 0; ; i += 5 {
		if i >= len(s) {
			t.Fatalf("modes %q: no end", s)
		}
		if s[i] == ttyOpEnd {
			if i != len(s)-1 {
				t.Fatalf("modes %q: bytes after the end", s)
			}
			return out
		}
		if _, dup := out[s[i]]; dup {
			t.Fatalf("modes: opcode %d twice", s[i])
		}
		out[s[i]] = binary.BigEndian.Uint32([]byte(s[i+1 : i+5]))
	}
}

// Every opcode a client may send, set to what would make the host read a
// line other than the rebuilder's, comes out as the rebuilder's value.
func TestSafeModesOverrideWhatChangesTheLine(t *testing.T) {
	hostile := map[byte]uint32{}
	var order []byte
	for op := byte(1); op < 160; op++ {
		hostile[op] = 'Z'
		order = append(order, op)
	}
	for _, op := range []byte{ttyECHO, ttyICANON, ttyISIG, ttyIEXTEN, ttyICRNL, ttyOPOST, ttyONLCR, ttyCS8, ttyIUTF8} {
		hostile[op] = 0
	}
	for _, op := range []byte{ttyISTRIP, ttyIUCLC, ttyINLCR, ttyIGNCR, ttyXCASE, ttyOLCUC, ttyOCRNL, ttyCS7, ttyPARENB, ttyECHONL, ttyPENDIN, ttyNOFLSH} {
		hostile[op] = 1
	}
	hostile[ttyOpISPEED], hostile[ttyOpOSPEED] = 38400, 9600
	order = append(order, ttyOpISPEED, ttyOpOSPEED)
	got, err := safeModes(encodeModes(hostile, order))
	if err != nil {
		t.Fatal(err)
	}
	m := decodeModes(t, got)
	for _, f := range fixedModes {
		if m[f.op] != f.arg {
			t.Errorf("opcode %d: %d, want %d", f.op, m[f.op], f.arg)
		}
	}
	if m[ttyVERASE] != 0x7f {
		t.Errorf("VERASE 'Z' became %d, want DEL", m[ttyVERASE])
	}
	if m[ttyOpISPEED] != 38400 || m[ttyOpOSPEED] != 9600 {
		t.Errorf("speeds %d/%d not kept", m[ttyOpISPEED], m[ttyOpOSPEED])
	}
	for _, op := range []byte{ttyIXON, ttyIXANY, ttyIXOFF, ttyIMAXBEL} {
		if m[op] != 1 {
			t.Errorf("flag %d: %d, want the client's, as a flag", op, m[op])
		}
	}
	for op := range m {
		switch {
		case op == ttyVERASE, op == ttyIXON, op == ttyIXANY, op == ttyIXOFF, op == ttyIMAXBEL, op == ttyOpISPEED, op == ttyOpOSPEED:
		default:
			found := false
			for _, f := range fixedModes {
				found = found || f.op == op
			}
			if !found {
				t.Errorf("opcode %d passed on from the client", op)
			}
		}
	}
}

func TestSafeModesKeepsTheClientsChoices(t *testing.T) {
	// A client whose backspace sends ^H, with flow control off (stty
	// -ixon, to have ^S in bash), and no modes at all.
	got, err := safeModes(encodeModes(map[byte]uint32{ttyVERASE: 0x08, ttyIXON: 0}, []byte{ttyVERASE, ttyIXON}))
	if err != nil {
		t.Fatal(err)
	}
	if m := decodeModes(t, got); m[ttyVERASE] != 0x08 || m[ttyIXON] != 0 || m[ttyVKILL] != 0x15 {
		t.Errorf("modes %v", m)
	}
	got, err = safeModes("")
	if err != nil {
		t.Fatal(err)
	}
	if m := decodeModes(t, got); m[ttyVERASE] != 0x7f || m[ttyECHO] != 1 || len(m) != len(fixedModes)+1 {
		t.Errorf("empty modes became %v", m)
	}
}

// A modes string cut inside an argument is refused, not guessed at; an
// opcode RFC 4254 leaves undefined ends the parse, as in sshd, so what
// follows it cannot be passed on.
func TestSafeModesMalformed(t *testing.T) {
	for _, bad := range []string{"\x04", "\x04\x00\x00\x00", "\x35\x00\x00\x00\x00\x04\x00"} {
		if _, err := safeModes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	got, err := safeModes("\xa0\x04\x00\x00\x00Z")
	if err != nil {
		t.Fatal(err)
	}
	if m := decodeModes(t, got); m[ttyVKILL] != 0x15 {
		t.Errorf("VKILL after an undefined opcode: %d", m[ttyVKILL])
	}
}
