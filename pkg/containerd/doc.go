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

// Package containerd runs the project's own containerd (Debian's containerd 1.6 with runc) for
// Edged and its tests: a private root, state directory and socket under one directory, a
// generated config (CRI with restrict_oom_score_adj, the project's pause image as the sandbox
// image, CNI through the bridge and host-local plugins of Debian's containernetworking-plugins)
// and per-registry hosts files so a plain-http registry on loopback can be pulled from. It never
// touches the system's containerd: nothing it writes or kills lies outside its directory, except
// the shims started for its own socket.
package containerd
