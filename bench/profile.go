package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// cpuProfiles takes a CPU profile of each scenario named in -profile, at
// each of -streams.
func (e *env) cpuProfiles(res *Results) error {
	for _, name := range strings.Split(e.o.profile, ",") {
		i := slices.IndexFunc(res.Scenarios, func(s *scenario) bool { return s.Name == strings.TrimSpace(name) })
		if i < 0 {
			return fmt.Errorf("-profile: scenario %q not run", name)
		}
		for _, n := range e.o.streams {
			if err := e.cpuProfile(res.Scenarios[i], n); err != nil {
				return err
			}
		}
	}
	return nil
}

// cpuProfile takes a 5 s CPU profile of the server of sc while sc runs at
// streams, into the results directory. The run is not one of the measured
// ones: profiling costs CPU of its own.
func (e *env) cpuProfile(sc *scenario, streams int) error {
	srv, _, err := e.server(sc.Server)
	if err != nil {
		return err
	}
	type fetched struct {
		b   []byte
		err error
	}
	ch := make(chan fetched, 1)
	go func() {
		time.Sleep(500 * time.Millisecond)
		b, err := get(srv.adminURL + "/debug/pprof/profile?seconds=5")
		ch <- fetched{b, err}
	}()
	if _, err := e.run(sc, streams, 6*time.Second); err != nil {
		return err
	}
	f := <-ch
	if f.err != nil {
		return fmt.Errorf("profile: %w", f.err)
	}
	path := filepath.Join(e.o.results, fmt.Sprintf("cpu-%s-%d.pprof", sc.Name, streams))
	if err := os.WriteFile(path, f.b, 0o644); err != nil {
		return err
	}
	fmt.Printf("\nCPU profile of %s under %s @%d: %s\n  go tool pprof -top %s\n", srv.name, sc.Name, streams, path, path)
	return nil
}
