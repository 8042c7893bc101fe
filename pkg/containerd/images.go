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

package containerd

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// CRINamespace is the containerd namespace the CRI service keeps its images and containers in.
const CRINamespace = "k8s.io"

// ImportImage imports an image tarball (OCI layout or docker save format) into the CRI's
// namespace with ctr, unpacked for the snapshotter in use, so pods can run it without a pull.
func (c *Containerd) ImportImage(ctx context.Context, tarball string) error {
	ctr, err := lookPath("ctr")
	if err != nil {
		return fmt.Errorf("importing %s: ctr %w (it comes with Debian's containerd package)", tarball, ErrNotInstalled)
	}
	cmd := exec.CommandContext(ctx, ctr, "--address", c.cfg.Socket(), "--namespace", CRINamespace,
		"images", "import", "--snapshotter", c.snapshotter, tarball)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("importing %s: ctr: %w: %s", tarball, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// AllowInsecureRegistry makes this containerd pull from host (host:port) over plain http; see
// Config.AllowInsecureRegistry.
func (c *Containerd) AllowInsecureRegistry(host string) error {
	return c.cfg.AllowInsecureRegistry(host)
}
