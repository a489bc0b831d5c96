;; greeter.wat: a small component with an import, for the examples.
;;
;;     package example:greeter@1.0.0;
;;     interface logger { log: func(msg: string); }
;;     interface greet  { greet: func(name: string) -> string; }
;;     world greeter { import logger; export greet; }
;;
;; `greet("Ada")` logs "Hello, Ada!" through the imported logger and returns it.
;; Rebuild the binary with: wasm-tools parse greeter.wat -o greeter.wasm
(component
  (import "example:greeter/logger@1.0.0" (instance $logger (export "log" (func (param "msg" string)))))
  (alias export $logger "log" (func $log))

  ;; Linear memory lives in its own module so the lowered `log` can name it before the
  ;; main module (which imports `log`) is instantiated.
  (core module $memory_module (memory (export "memory") 1))
  (core instance $memory_instance (instantiate $memory_module))
  (alias core export $memory_instance "memory" (core memory $memory))
  (core func $log_lowered (canon lower (func $log) (memory $memory)))

  (core module $main
    (import "env" "memory" (memory 1))
    (import "logger" "log" (func $log (param i32 i32)))
    (global $heap (mut i32) (i32.const 1024))
    (data (i32.const 16) "Hello, ")

    ;; A bump allocator: enough for a short-lived example.
    (func $realloc (export "cabi_realloc")
          (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get $align))))
      (global.set $heap (i32.add (local.get $p) (local.get $size)))
      (if (local.get $old_size)
        (then (memory.copy (local.get $p) (local.get $old) (local.get $old_size))))
      (local.get $p))

    ;; greet(name) = "Hello, " + name + "!"; returns a pointer to (ptr, len).
    (func (export "greet") (param $name i32) (param $len i32) (result i32)
      (local $out i32) (local $out_len i32) (local $ret i32)
      (local.set $out_len (i32.add (local.get $len) (i32.const 8)))
      (local.set $out (call $realloc (i32.const 0) (i32.const 0) (i32.const 1) (local.get $out_len)))
      (memory.copy (local.get $out) (i32.const 16) (i32.const 7))
      (memory.copy (i32.add (local.get $out) (i32.const 7)) (local.get $name) (local.get $len))
      (i32.store8 (i32.add (local.get $out) (i32.sub (local.get $out_len) (i32.const 1))) (i32.const 33))
      (call $log (local.get $out) (local.get $out_len))
      (local.set $ret (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 8)))
      (i32.store (local.get $ret) (local.get $out))
      (i32.store offset=4 (local.get $ret) (local.get $out_len))
      (local.get $ret)))

  (core instance $main_instance (instantiate $main
    (with "env" (instance (export "memory" (memory $memory))))
    (with "logger" (instance (export "log" (func $log_lowered))))))

  (func $greet (param "name" string) (result string)
    (canon lift (core func $main_instance "greet") (memory $memory)
                (realloc (core func $main_instance "cabi_realloc"))))
  (instance $greet_api (export "greet" (func $greet)))
  (export "example:greeter/greet@1.0.0" (instance $greet_api)))
