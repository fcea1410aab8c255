package evidence

import (
	"testing"
)

func TestCellNeutralisesFormulas(t *testing.T) {
	for in, want := range map[string]string{
		"=1+1":          "'=1+1",
		"+SUM(A1)":      "'+SUM(A1)",
		"-2+3":          "'-2+3",
		"@cmd":          "'@cmd",
		"\t=x":          "'\t=x",
		"\r=x":          "'\r=x",
		"rm -rf /":      "rm -rf /",
		"":              "",
		"a=b":           "a=b",
		"2026-10-01T00": "2026-10-01T00",
	} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEncodeTableOneObjectPerLine(t *testing.T) {
	rule := "^rm"
	rows := []commandRow{
		{ID: 1, SessionID: "s", TS: "t1", Command: "echo <b> & \"q\"", Action: "allowed"},
		{ID: 2, SessionID: "s", TS: "t2", Command: "=evil", Action: "denied", Rule: &rule},
	}
	c, j, err := encodeTable(commandHeader, rows)
	if err != nil {
		t.Fatal(err)
	}
	wantCSV := "id,session_id,ts,user,login,host,tenant,source,command,action,rule\n" +
		"1,s,t1,,,,,,\"echo <b> & \"\"q\"\"\",allowed,\n" +
		"2,s,t2,,,,,,'=evil,denied,^rm\n"
	if string(c) != wantCSV {
		t.Errorf("csv:\n%s\nwant:\n%s", c, wantCSV)
	}
	wantJSON := "[\n" +
		`{"id":1,"session_id":"s","ts":"t1","user":"","login":"","host":"","tenant":"","source":"","command":"echo <b> & \"q\"","action":"allowed","rule":null},` + "\n" +
		`{"id":2,"session_id":"s","ts":"t2","user":"","login":"","host":"","tenant":"","source":"","command":"=evil","action":"denied","rule":"^rm"}` + "\n]\n"
	if string(j) != wantJSON {
		t.Errorf("json:\n%s\nwant:\n%s", j, wantJSON)
	}
	c, j, err = encodeTable[commandRow](commandHeader, nil)
	if err != nil || string(j) != "[]\n" || string(c) != wantCSV[:len("id,session_id,ts,user,login,host,tenant,source,command,action,rule\n")] {
		t.Errorf("empty table: %q %q %v", c, j, err)
	}
}
