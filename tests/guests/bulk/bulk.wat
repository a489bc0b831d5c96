;; bulk.wat: echo functions for the runtime benchmarks (bench/bench_runtime.py) and the
;; differential tests, written by hand so a call costs the data path and nothing else
;; (no interpreter inside wasm, as a componentize-py guest has).
;;
;;     package test:bulk;
;;     interface host { tick: func(x: u32) -> u32; }
;;     interface api {
;;         record sample { id: u32, x: f64, y: f64, ok: bool }
;;         echo-bytes: func(data: list<u8>) -> list<u8>;
;;         echo-string: func(s: string) -> string;
;;         echo-u32s: func(xs: list<u32>) -> list<u32>;
;;         echo-sample: func(s: sample) -> sample;
;;         echo-strings: func(xs: list<string>) -> list<string>;
;;         echo-samples: func(xs: list<sample>) -> list<sample>;
;;         add: func(a: u32, b: u32) -> u32;
;;         call-host: func(x: u32) -> u32;            // tick(x) + 1
;;     }
;;     world bulk { import host; export api; }
;;
;; Memory: the return area is at 16 (a (ptr, len) pair or a sample, 32 bytes); the heap is a
;; bump allocator from 1024 that grows memory as needed; every post-return resets it, so
;; the echoes reuse the same memory call after call (a 256 MiB echo grows it once).
(component
  (import "test:bulk/host" (instance $host (export "tick" (func (param "x" u32) (result u32)))))
  (alias export $host "tick" (func $tick))
  (core func $tick-lowered (canon lower (func $tick)))

  (core module $m
    (import "host" "tick" (func $tick (param i32) (result i32)))
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 1024))

    ;; cabi_realloc: bump allocation (old contents copied when old_ptr != 0)
    (func $realloc (export "cabi_realloc")
      (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
      (local $ptr i32) (local $end i32) (local $have i32)
      ;; ptr = (heap + align - 1) & -align
      (local.set $ptr
        (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
                 (i32.sub (i32.const 0) (local.get $align))))
      (local.set $end (i32.add (local.get $ptr) (local.get $size)))
      (if (i32.lt_u (local.get $end) (local.get $ptr)) (then unreachable))
      (local.set $have (i32.shl (memory.size) (i32.const 16)))
      (if (i32.gt_u (local.get $end) (local.get $have))
        (then
          (if (i32.eq
                (memory.grow
                  (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 0xffff))
                             (i32.const 16)))
                (i32.const -1))
            (then unreachable))))
      (if (local.get $old)
        (then (memory.copy (local.get $ptr) (local.get $old)
                (select (local.get $old_size) (local.get $size)
                        (i32.lt_u (local.get $old_size) (local.get $size))))))
      (global.set $heap (local.get $end))
      (local.get $ptr))

    ;; post-return of every function that returns through the return area
    (func (export "reset") (param i32)
      (global.set $heap (i32.const 1024)))

    ;; echo of a (ptr, len) pair: the return area points at the argument itself
    (func $echo (export "echo") (param $ptr i32) (param $len i32) (result i32)
      (i32.store (i32.const 16) (local.get $ptr))
      (i32.store (i32.const 20) (local.get $len))
      (i32.const 16))

    (func (export "echo-sample") (param $id i32) (param $x f64) (param $y f64) (param $ok i32) (result i32)
      (i32.store (i32.const 16) (local.get $id))
      (f64.store (i32.const 24) (local.get $x))
      (f64.store (i32.const 32) (local.get $y))
      (i32.store8 (i32.const 40) (local.get $ok))
      (i32.const 16))

    (func (export "add") (param i32 i32) (result i32)
      (i32.add (local.get 0) (local.get 1)))

    (func (export "call-host") (param $x i32) (result i32)
      (i32.add (call $tick (local.get $x)) (i32.const 1))))

  (core instance $i (instantiate $m (with "host" (instance (export "tick" (func $tick-lowered))))))
  (alias core export $i "memory" (core memory $mem))
  (alias core export $i "cabi_realloc" (core func $realloc))

  (type $sample (record (field "id" u32) (field "x" f64) (field "y" f64) (field "ok" bool)))
  (func $echo-bytes (param "data" (list u8)) (result (list u8))
    (canon lift (core func $i "echo") (memory $mem) (realloc $realloc) (post-return (core func $i "reset"))))
  (func $echo-string (param "s" string) (result string)
    (canon lift (core func $i "echo") (memory $mem) (realloc $realloc) string-encoding=utf8
      (post-return (core func $i "reset"))))
  (func $echo-u32s (param "xs" (list u32)) (result (list u32))
    (canon lift (core func $i "echo") (memory $mem) (realloc $realloc) (post-return (core func $i "reset"))))
  (func $echo-sample (param "s" $sample) (result $sample)
    (canon lift (core func $i "echo-sample") (memory $mem) (realloc $realloc)))
  (func $echo-strings (param "xs" (list string)) (result (list string))
    (canon lift (core func $i "echo") (memory $mem) (realloc $realloc) string-encoding=utf8
      (post-return (core func $i "reset"))))
  (func $echo-samples (param "xs" (list $sample)) (result (list $sample))
    (canon lift (core func $i "echo") (memory $mem) (realloc $realloc) (post-return (core func $i "reset"))))
  (func $add (param "a" u32) (param "b" u32) (result u32) (canon lift (core func $i "add")))
  (func $call-host (param "x" u32) (result u32) (canon lift (core func $i "call-host")))

  (instance $api
    (export "sample" (type $sample))
    (export "echo-bytes" (func $echo-bytes))
    (export "echo-string" (func $echo-string))
    (export "echo-u32s" (func $echo-u32s))
    (export "echo-sample" (func $echo-sample))
    (export "echo-strings" (func $echo-strings))
    (export "echo-samples" (func $echo-samples))
    (export "add" (func $add))
    (export "call-host" (func $call-host)))
  (export "test:bulk/api" (instance $api)))
