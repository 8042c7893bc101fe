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

package controllers

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/edgetwin/edgetwin/api/v1alpha1"
)

// setCondition sets a condition, keeping its LastTransitionTime when the status did not change.
func setCondition(conds *[]metav1.Condition, generation int64, typ string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: generation,
	})
}

// setReady sets the summary Ready condition from the named specific conditions: True when all
// of them are True, otherwise False with a message naming those that are not.
func setReady(conds *[]metav1.Condition, generation int64, types ...string) {
	var notReady []string
	for _, t := range types {
		if !meta.IsStatusConditionTrue(*conds, t) {
			notReady = append(notReady, t)
		}
	}
	if len(notReady) == 0 {
		setCondition(conds, generation, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonReady, "")
		return
	}
	setCondition(conds, generation, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonNotReady,
		fmt.Sprintf("not yet: %s", strings.Join(notReady, ", ")))
}
