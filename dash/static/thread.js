// Opens a team's message thread at the first message waiting for a reply, else at the newest:
// threads grow long and the reply box sits under them, so starting at the oldest message
// (the browser's default for a scroll box) hides exactly what the coach came to answer.
(function () {
  var threads = document.querySelectorAll(".thread");
  for (var i = 0; i < threads.length; i++) {
    var box = threads[i];
    var waiting = box.querySelector(".msg.waiting");
    box.scrollTop = waiting ? Math.max(0, waiting.offsetTop - 8) : box.scrollHeight;
  }
})();
