;; hostile.wat: a component that misbehaves on request, for the per-instance limits.
;;
;;     package test:hostile;
;;     interface api {
;;         spin: func();                      // loops forever
;;         count: func(n: u32) -> u32;        // loops n times, returns n
;;         grow: func(pages: u32) -> s32;     // memory.grow: the old size in pages, or -1
;;         pages: func() -> u32;              // memory.size
;;     }
;;     world hostile { export api; }
(component
  (core module $m
    (memory (export "memory") 1)
    (func (export "spin")
      (loop $forever (br $forever)))
    (func (export "count") (param $n i32) (result i32)
      (local $i i32)
      (block $done
        (loop $next
          (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $next)))
      (local.get $i))
    (func (export "grow") (param $pages i32) (result i32)
      (memory.grow (local.get $pages)))
    (func (export "pages") (result i32)
      (memory.size)))
  (core instance $i (instantiate $m))
  (func $spin (canon lift (core func $i "spin")))
  (func $count (param "n" u32) (result u32) (canon lift (core func $i "count")))
  (func $grow (param "pages" u32) (result s32) (canon lift (core func $i "grow")))
  (func $pages (result u32) (canon lift (core func $i "pages")))
  (instance $api
    (export "spin" (func $spin))
    (export "count" (func $count))
    (export "grow" (func $grow))
    (export "pages" (func $pages)))
  (export "test:hostile/api" (instance $api)))
