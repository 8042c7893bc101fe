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

// Command edgetwin is the administrator's CLI. It stays thin: flags and wiring, with the work
// done by the packages it calls.
//
//	edgetwin token create NODE [--ttl 1h] [--namespace edgetwin-system] [--kubeconfig PATH]
//	                           [--server HOST[:PORT]] [--ca-secret edgetwin-ca]
//
// 'token create' makes a join token bound to NODE (cloud/join.Create, which also creates the
// EdgeNode when it does not exist) and prints it with the 'edgecore join' line to run on the
// edge machine. It loads the CA with cloud/pki.EnsureCA, which creates the CA Secret when it is
// absent, exactly as cloudcore's first start would: tokens can be made before cloudcore has
// ever run, and cloudcore then serves with that CA.
//
// Exit codes: 0 on success, 1 when the work failed (API server, CA), 2 for bad usage.
// It owns no state and touches only what those packages touch: the CA Secret, token Secrets and
// EdgeNodes.
package main
