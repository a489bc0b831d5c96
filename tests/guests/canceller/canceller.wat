;; canceller.wat: cancellation both ways, written by hand (componentize-py 0.25's runtime
;; raises NotImplementedError on TASK_CANCELLED, so this is the guest that handles it).
;;
;;     package test:canceller;
;;     interface host {
;;         block: async func() -> u32;            // the host decides when (if ever) it returns
;;     }
;;     interface api {
;;         relay: async func() -> u32;            // returns what `block` returns; on TASK_CANCELLED it
;;                                                // cancels its `block` subtask, then task.cancel
;;         give-up: async func() -> u32;          // calls `block`, then cancels that subtask at once
;;                                                // and returns what subtask.cancel said
;;         last-cancel: func() -> u32;            // what subtask.cancel said in `relay` (0 = never ran)
;;     }
;;     world canceller { import host; export api; }
;;
;; One task at a time keeps its state in globals: the subtask, the set, the return pointer at 16.
(component
  (import "test:canceller/host" (instance $host (export "block" (func async (result u32)))))
  (core module $mem (memory (export "mem") 1))
  (core instance $memi (instantiate $mem))
  (alias core export $memi "mem" (core memory $memory))
  (alias export $host "block" (func $block))
  (core func $block-lowered (canon lower (func $block) async (memory $memory)))
  (core func $task-return (canon task.return (result u32)))
  (core func $task-cancel (canon task.cancel))
  (core func $wset-new (canon waitable-set.new))
  (core func $wset-drop (canon waitable-set.drop))
  (core func $join (canon waitable.join))
  (core func $subtask-cancel (canon subtask.cancel))
  (core func $subtask-drop (canon subtask.drop))
  (core module $m
    (import "" "mem" (memory 1))
    (import "" "block" (func $block (param i32) (result i32)))
    (import "" "task-return" (func $task-return (param i32)))
    (import "" "task-cancel" (func $task-cancel))
    (import "" "wset-new" (func $wset-new (result i32)))
    (import "" "wset-drop" (func $wset-drop (param i32)))
    (import "" "join" (func $join (param i32 i32)))
    (import "" "subtask-cancel" (func $subtask-cancel (param i32) (result i32)))
    (import "" "subtask-drop" (func $subtask-drop (param i32)))
    (global $sub (mut i32) (i32.const 0))
    (global $set (mut i32) (i32.const 0))
    (global $last (mut i32) (i32.const 0))
    ;; the subtask index of a call to `block` that did not return at once (else traps)
    (func $start-block (result i32)
      (local $packed i32)
      (local.set $packed (call $block (i32.const 16)))
      (if (i32.ne (i32.and (local.get $packed) (i32.const 15)) (i32.const 1 (; STARTED ;)))
        (then unreachable))
      (i32.shr_u (local.get $packed) (i32.const 4)))
    (func (export "relay") (result i32)
      (global.set $sub (call $start-block))
      (global.set $set (call $wset-new))
      (call $join (global.get $sub) (global.get $set))
      (i32.or (i32.const 2 (; WAIT ;)) (i32.shl (global.get $set) (i32.const 4))))
    (func $finish
      (call $join (global.get $sub) (i32.const 0))
      (call $subtask-drop (global.get $sub))
      (call $wset-drop (global.get $set)))
    (func (export "relay-callback") (param $event i32) (param $p1 i32) (param $p2 i32) (result i32)
      ;; SUBTASK, RETURNED: pass the value on
      (if (i32.and (i32.eq (local.get $event) (i32.const 1)) (i32.eq (local.get $p2) (i32.const 2)))
        (then
          (call $finish)
          (call $task-return (i32.load (i32.const 16)))
          (return (i32.const 0 (; EXIT ;)))))
      ;; TASK_CANCELLED: cancel the host call, then acknowledge
      (if (i32.eq (local.get $event) (i32.const 6))
        (then
          (global.set $last (call $subtask-cancel (global.get $sub)))
          (call $finish)
          (call $task-cancel)
          (return (i32.const 0))))
      unreachable)
    (func (export "give-up") (result i32)
      (local $sub i32)
      (local.set $sub (call $start-block))
      (call $task-return (call $subtask-cancel (local.get $sub)))
      (call $subtask-drop (local.get $sub))
      (i32.const 0))
    (func (export "callback") (param i32 i32 i32) (result i32) unreachable)
    (func (export "last-cancel") (result i32) (global.get $last)))
  (core instance $i (instantiate $m (with "" (instance
      (export "mem" (memory $memory)) (export "block" (func $block-lowered))
      (export "task-return" (func $task-return)) (export "task-cancel" (func $task-cancel))
      (export "wset-new" (func $wset-new)) (export "wset-drop" (func $wset-drop)) (export "join" (func $join))
      (export "subtask-cancel" (func $subtask-cancel)) (export "subtask-drop" (func $subtask-drop))))))
  (func $relay async (result u32)
    (canon lift (core func $i "relay") async (callback (core func $i "relay-callback"))))
  (func $give-up async (result u32)
    (canon lift (core func $i "give-up") async (callback (core func $i "callback"))))
  (func $last-cancel (result u32) (canon lift (core func $i "last-cancel")))
  (instance $api (export "relay" (func $relay)) (export "give-up" (func $give-up))
    (export "last-cancel" (func $last-cancel)))
  (export "test:canceller/api" (instance $api)))
