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

// Package v1alpha1 holds the edgetwin.dev/v1alpha1 API: Device, DeviceModel and EdgeNode.
//
// The types here are the contract with users (kubectl, manifests) and with the generated
// clientset under pkg/client. They import only k8s.io/api and k8s.io/apimachinery so that light
// programs (edgecore, the simulator) can use them without pulling in controller-runtime.
//
// +kubebuilder:object:generate=true
// +groupName=edgetwin.dev
// +groupGoName=Edgetwin
package v1alpha1
