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

package edged

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/edgetwin/edgetwin/pkg/wire"
)

// nodeStatus describes the node: capacity from the machine, the runtime from CRI's Version.
func (e *Edged) nodeStatus(ctx context.Context) (wire.NodeStatusReport, error) {
	capacity := map[string]string{
		string(v1.ResourceCPU):  strconv.Itoa(runtime.NumCPU()),
		string(v1.ResourcePods): strconv.Itoa(e.cfg.MaxPods),
	}
	if kib := memTotalKiB(); kib > 0 {
		capacity[string(v1.ResourceMemory)] = resource.NewQuantity(kib*1024, resource.BinarySI).String()
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(e.cfg.RootDir, &fs); err == nil {
		capacity[string(v1.ResourceEphemeralStorage)] = resource.NewQuantity(int64(fs.Blocks)*fs.Bsize, resource.BinarySI).String()
	}
	info := v1.NodeSystemInfo{
		MachineID:       readTrimmed("/etc/machine-id"),
		SystemUUID:      readTrimmed("/sys/class/dmi/id/product_uuid"),
		BootID:          readTrimmed("/proc/sys/kernel/random/boot_id"),
		KernelVersion:   readTrimmed("/proc/sys/kernel/osrelease"),
		OSImage:         osImage(),
		KubeletVersion:  e.cfg.Version,
		OperatingSystem: runtime.GOOS,
		Architecture:    runtime.GOARCH,
	}
	v, err := e.runtime.Version(ctx, "v1")
	if err != nil {
		return wire.NodeStatusReport{}, err
	}
	info.ContainerRuntimeVersion = v.RuntimeName + "://" + v.RuntimeVersion
	addresses := []v1.NodeAddress{}
	if e.hostIP != "" {
		addresses = append(addresses, v1.NodeAddress{Type: v1.NodeInternalIP, Address: e.hostIP})
	}
	if h, err := os.Hostname(); err == nil {
		addresses = append(addresses, v1.NodeAddress{Type: v1.NodeHostName, Address: h})
	}
	rawInfo, err := json.Marshal(info)
	if err != nil {
		return wire.NodeStatusReport{}, err
	}
	rawAddrs, err := json.Marshal(addresses)
	if err != nil {
		return wire.NodeStatusReport{}, err
	}
	return wire.NodeStatusReport{Capacity: capacity, Allocatable: capacity, NodeInfo: rawInfo, Addresses: rawAddrs}, nil
}

// reportNode puts the node's status in the outbox when it changed.
func (e *Edged) reportNode(ctx context.Context) {
	st, err := e.nodeStatus(ctx)
	if err != nil {
		e.log.Error(err, "Could not describe the node (the runtime does not answer)")
		return
	}
	raw, _ := json.Marshal(st)
	if bytes.Equal(raw, e.lastNode) {
		return
	}
	if err := e.cfg.Status.NodeStatus(e.cfg.NodeName, st); err != nil {
		e.log.Error(err, "Could not queue the node's status")
		return
	}
	e.lastNode = raw
}

func memTotalKiB() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			n, _ := strconv.ParseInt(fields[1], 10, 64)
			return n
		}
	}
	return 0
}

func osImage() string {
	raw, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return runtime.GOOS
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			if s, err := strconv.Unquote(v); err == nil {
				return s
			}
			return v
		}
	}
	return runtime.GOOS
}

func readTrimmed(path string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(raw))
}
