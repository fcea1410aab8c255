package gateway

import (
	"encoding/binary"
	"errors"
)

// The terminal modes of a pty-req (RFC 4254 §8) set the host's tty: which
// keys erase, kill a line, end input or end a line, whether input is
// echoed, whether CR becomes LF, whether letters are folded to lower case
// or the eighth bit stripped. The command log and the deny rules read
// lines rebuilt from the keys the client sends (recorder.LineBuilder),
// which models a terminal with the usual settings: DEL or ^H erase, ^U
// kill, ^W word erase, ^D end of input, ^V literal next, CR or LF submit,
// echo on. Passed on as the client sent them, modes would let the host
// read a different line from the one the rules are asked about: with
// `stty kill Z` on the client, "echo okZrm -rf /" runs rm; with VEOF or
// VEOL on a letter a line runs with no Enter; with ECHO off every line
// looks like a password; with IUCLC "RM -RF /" passes a rule on "rm"; with
// ISTRIP a byte 0xF2 becomes 'r'. So the host gets a fixed set of modes,
// the rebuilder's, and of the client's only what does not change which
// line is read: its speeds, its choice between the two erase keys the
// rebuilder knows, and flow control (^S and ^Q, which the rebuilder takes
// as a search it cannot follow and leaves to the screen).

// Opcodes of RFC 4254 §8 (and RFC 8160 for IUTF8).
const (
	ttyOpEnd    = 0
	ttyVINTR    = 1
	ttyVQUIT    = 2
	ttyVERASE   = 3
	ttyVKILL    = 4
	ttyVEOF     = 5
	ttyVEOL     = 6
	ttyVEOL2    = 7
	ttyVSTART   = 8
	ttyVSTOP    = 9
	ttyVSUSP    = 10
	ttyVDSUSP   = 11
	ttyVREPRINT = 12
	ttyVWERASE  = 13
	ttyVLNEXT   = 14
	ttyVFLUSH   = 15
	ttyVSWTCH   = 16
	ttyVSTATUS  = 17
	ttyVDISCARD = 18
	ttyIGNPAR   = 30
	ttyPARMRK   = 31
	ttyINPCK    = 32
	ttyISTRIP   = 33
	ttyINLCR    = 34
	ttyIGNCR    = 35
	ttyICRNL    = 36
	ttyIUCLC    = 37
	ttyIXON     = 38
	ttyIXANY    = 39
	ttyIXOFF    = 40
	ttyIMAXBEL  = 41
	ttyIUTF8    = 42
	ttyISIG     = 50
	ttyICANON   = 51
	ttyXCASE    = 52
	ttyECHO     = 53
	ttyECHOE    = 54
	ttyECHOK    = 55
	ttyECHONL   = 56
	ttyNOFLSH   = 57
	ttyTOSTOP   = 58
	ttyIEXTEN   = 59
	ttyECHOCTL  = 60
	ttyECHOKE   = 61
	ttyPENDIN   = 62
	ttyOPOST    = 70
	ttyOLCUC    = 71
	ttyONLCR    = 72
	ttyOCRNL    = 73
	ttyONOCR    = 74
	ttyONLRET   = 75
	ttyCS7      = 90
	ttyCS8      = 91
	ttyPARENB   = 92
	ttyPARODD   = 93
	ttyOpISPEED = 128
	ttyOpOSPEED = 129

	// ttyDisabled is a special character turned off, as OpenSSH's
	// client encodes _POSIX_VDISABLE.
	ttyDisabled = 255
)

// fixedModes is what the host's tty is set to, whatever the client sent:
// Linux's defaults (stty sane), which the rebuilder models.
var fixedModes = []struct {
	op  byte
	arg uint32
}{
	{ttyVINTR, 0x03}, {ttyVQUIT, 0x1c}, {ttyVKILL, 0x15}, {ttyVEOF, 0x04},
	{ttyVEOL, ttyDisabled}, {ttyVEOL2, ttyDisabled}, {ttyVSTART, 0x11}, {ttyVSTOP, 0x13},
	{ttyVSUSP, 0x1a}, {ttyVREPRINT, 0x12}, {ttyVWERASE, 0x17}, {ttyVLNEXT, 0x16},
	{ttyVDISCARD, 0x0f},
	{ttyIGNPAR, 0}, {ttyPARMRK, 0}, {ttyINPCK, 0}, {ttyISTRIP, 0}, {ttyINLCR, 0}, {ttyIGNCR, 0},
	{ttyICRNL, 1}, {ttyIUCLC, 0}, {ttyIUTF8, 1},
	{ttyISIG, 1}, {ttyICANON, 1}, {ttyXCASE, 0}, {ttyECHO, 1}, {ttyECHOE, 1}, {ttyECHOK, 1},
	{ttyECHONL, 0}, {ttyNOFLSH, 0}, {ttyTOSTOP, 0}, {ttyIEXTEN, 1}, {ttyECHOCTL, 1},
	{ttyECHOKE, 1}, {ttyPENDIN, 0},
	{ttyOPOST, 1}, {ttyOLCUC, 0}, {ttyONLCR, 1}, {ttyOCRNL, 0}, {ttyONOCR, 0}, {ttyONLRET, 0},
	{ttyCS7, 0}, {ttyCS8, 1}, {ttyPARENB, 0}, {ttyPARODD, 0},
}

// errBadModes is a modes string that does not parse: refused, not guessed.
var errBadModes = errors.New("malformed terminal modes")

// safeModes returns the encoded modes to send the host for a client's
// encoded modes: fixedModes, with the client's speeds, its erase key if it
// is DEL or ^H (DEL otherwise), and its flow-control flags.
func safeModes(client string) (string, error) {
	kept := map[byte]uint32{ttyVERASE: 0x7f}
	for i := 0; i < len(client); {
		op := client[i]
		if op == ttyOpEnd || op >= 160 {
			// End, or an opcode RFC 4254 leaves undefined, after which
			// nothing can be parsed: what follows is ignored, as by sshd.
			break
		}
		if i+5 > len(client) {
			return "", errBadModes
		}
		arg := binary.BigEndian.Uint32([]byte(client[i+1 : i+5]))
		i += 5
		switch op {
		case ttyOpISPEED, ttyOpOSPEED:
			kept[op] = arg
		case ttyVERASE:
			if arg == 0x08 || arg == 0x7f {
				kept[op] = arg
			}
		case ttyIXON, ttyIXANY, ttyIXOFF, ttyIMAXBEL:
			kept[op] = min(arg, 1)
		}
	}
	out := make([]byte, 0, 5*(len(fixedModes)+len(kept))+1)
	put := func(op byte, arg uint32) {
		out = append(out, op)
		out = binary.BigEndian.AppendUint32(out, arg)
	}
	for _, m := range fixedModes {
		put(m.op, m.arg)
	}
	for _, op := range []byte{ttyVERASE, ttyIXON, ttyIXANY, ttyIXOFF, ttyIMAXBEL, ttyOpISPEED, ttyOpOSPEED} {
		if arg, ok := kept[op]; ok {
			put(op, arg)
		}
	}
	return string(append(out, ttyOpEnd)), nil
}
