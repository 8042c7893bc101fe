/*
Copyright 2026 The edgetwin Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command workload is the test workload image's process. At start it prints one line to stdout,
// "workload: " and a JSON object with its arguments, its environment (the variables named by
// --env, or all) and the content of every file named by --read; then it serves that JSON on
// --listen, if given, and waits for --sleep (forever by default) or SIGTERM, and exits with
// --exit. Every flag can also come from the environment (WORKLOAD_EXIT=3), so a pod's env can
// decide what its container does.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Report is what the workload prints and serves.
type Report struct {
	Args  []string          `json:"args"`
	Env   map[string]string `json:"env"`
	Files map[string]string `json:"files"`
}

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	flags := flag.NewFlagSet("workload", flag.ExitOnError)
	var reads, envs list
	flags.Var(&reads, "read", "A file whose content to report (repeatable).")
	flags.Var(&envs, "env", "An environment variable to report (repeatable); none reports all.")
	exit := flags.Int("exit", 0, "The exit code.")
	sleep := flags.Duration("sleep", -1, "How long to run before exiting; negative is until SIGTERM.")
	listen := flags.String("listen", "", "An address to serve the report on.")
	_ = flags.Parse(os.Args[1:])
	flags.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv("WORKLOAD_" + strings.ToUpper(f.Name)); ok && !isSet(flags, f.Name) {
			for part := range strings.SplitSeq(v, ",") {
				_ = flags.Set(f.Name, part)
			}
		}
	})

	r := Report{Args: os.Args[1:], Env: map[string]string{}, Files: map[string]string{}}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if len(envs) == 0 || slices.Contains(envs, k) {
			r.Env[k] = v
		}
	}
	for _, p := range reads {
		raw, err := os.ReadFile(p)
		if err != nil {
			r.Files[p] = "error: " + err.Error()
			continue
		}
		r.Files[p] = string(raw)
	}
	line, _ := json.Marshal(r)
	fmt.Printf("workload: %s\n", line)

	if *listen != "" {
		go func() {
			err := http.ListenAndServe(*listen, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write(line)
			}))
			fmt.Fprintln(os.Stderr, "workload:", err)
		}()
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	var timeout <-chan time.Time
	if *sleep >= 0 {
		timeout = time.After(*sleep)
	}
	select {
	case s := <-signals:
		fmt.Printf("workload: stopping on %s\n", s)
		os.Exit(0)
	case <-timeout:
	}
	fmt.Printf("workload: exiting with %d\n", *exit)
	os.Exit(*exit)
}

func isSet(flags *flag.FlagSet, name string) bool {
	set := false
	flags.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
