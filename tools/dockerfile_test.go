package tools

import (
	"bufio"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct{ cmd, args string }

// dockerStages reads the Dockerfile at rel (from the repository root) and
// returns the instructions before its last stage, and those of the last
// stage with its FROM first (the image's base, without any AS name).
func dockerStages(t *testing.T, rel string) (before, last []instruction) {
	t.Helper()
	var all []instruction
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(readText(t, rel)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		cmd, rest, _ := strings.Cut(cur.String(), " ")
		all = append(all, instruction{strings.ToUpper(cmd), strings.Join(strings.Fields(rest), " ")})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].cmd == "FROM" {
			from := all[i]
			from.args, _, _ = strings.Cut(from.args, " ")
			return all[:i], append([]instruction{from}, all[i+1:]...)
		}
	}
	t.Fatalf("%s: no FROM", rel)
	return nil, nil
}

// args returns the arguments of every cmd instruction of stage, in order.
func args(stage []instruction, cmd string) []string {
	var out []string
	for _, in := range stage {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}
